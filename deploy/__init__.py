"""Local multi-process launcher, scenarios (package data) and deployment files."""
