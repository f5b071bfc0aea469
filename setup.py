"""Builds the relay's compiled fan-out loop; the rest of the package is in pyproject.toml."""

from setuptools import Extension, setup  # type: ignore[import-untyped]

setup(
    ext_modules=[
        Extension(
            "media_relay._fanout",
            sources=["media_relay/_fanout.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
