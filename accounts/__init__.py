"""Who people are: the user model (email as login), login and logout, and school membership."""
