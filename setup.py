"""Only what pyproject.toml cannot say: ship the top-level templates/ folder as the package data lehttpd/templates.

A checkout and an editable install read templates/ in place; a wheel, an sdist and pipx carry the same files as
lehttpd/templates (lehttpd/apache/render.py looks in both places).
"""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["lehttpd", "lehttpd.*"]), "lehttpd.data", "lehttpd.templates"],
      package_dir={"lehttpd.templates": "templates"})
