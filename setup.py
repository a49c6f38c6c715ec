"""Package layout setuptools cannot express in pyproject.toml: the top-level resources/ folder (W/L presets,
built-in models) is installed as the package ``radview_resources`` (see viewer.core.resources), so a wheel
install finds it just as an editable install of the checkout does."""

from setuptools import find_namespace_packages, find_packages, setup

# resources/ and every folder under it (models/<id>/ ...), so each one's files are package data
RESOURCE_FOLDERS = find_namespace_packages("resources", exclude=["__pycache__", "*.__pycache__"])
RESOURCE_PACKAGES = ["radview_resources", *(f"radview_resources.{name}" for name in RESOURCE_FOLDERS)]

setup(
    packages=[*find_packages(include=["viewer*", "ai*"]), *RESOURCE_PACKAGES],
    package_dir={"radview_resources": "resources"},
    package_data={package: ["*"] for package in RESOURCE_PACKAGES},
    exclude_package_data={"radview_resources": ["screenshot.png"]},  # the README's image
)
