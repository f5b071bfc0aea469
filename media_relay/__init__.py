"""The live classroom: lesson websockets, signalling and (in later work) the forwarding relay.

This app imports no other Homeroom app. It asks whether a user may join a lesson through the port
in `ports.py`, which `classrooms` implements and settings name.
"""
