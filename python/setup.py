# Installs the pure-Python vineyardfs client: pip install ./python
# (no pyproject.toml on purpose: pip then builds with the setuptools already
# installed, so the install needs no network.)
from setuptools import setup

setup(
    name="vineyardfs",
    version="0.2.0",
    description="Vineyard's Python API over a vineyardfs FUSE mount (files, xattrs, mmap)",
    packages=["vineyardfs"],
    python_requires=">=3.8",
    extras_require={"numpy": ["numpy"], "pandas": ["numpy", "pandas"], "scipy": ["numpy", "scipy"]},
)
