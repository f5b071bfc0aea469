"""Builds the relay's compiled parts (the fan-out loop and the ingest, the bandwidth estimator);
the rest of the package is in pyproject.toml."""

from setuptools import Extension, setup  # type: ignore[import-untyped]

setup(
    ext_modules=[
        Extension(
            "media_relay._fanout",
            sources=["media_relay/_fanout.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
        Extension(
            "media_relay._estimate",
            sources=["media_relay/_estimate.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ]
)
