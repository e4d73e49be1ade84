"""Maps the top-level folders onto sub-packages of the one import package ``bazaar`` (docs/adr/0001-architecture.md).

``node/`` installs as ``bazaar.node``, ``protocol/`` as ``bazaar.protocol`` and so on; sub-packages are
found automatically, so adding a market never touches packaging. Everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = ("node", "protocol", "mechanisms", "ledger", "deploy")

packages = ["bazaar"]
package_dir = {"bazaar": "bazaar_pkg"}
for root in ROOTS:
    for name in find_packages(include=[root, f"{root}.*"]):
        packages.append(f"bazaar.{name}")
        package_dir[f"bazaar.{name}"] = name.replace(".", "/")

setup(packages=packages, package_dir=package_dir)
