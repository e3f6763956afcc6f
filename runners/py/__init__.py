"""Python orchestration of the tdxhp CLI: nightly fuzz campaigns and merge gates (DESIGN.md "Running")."""
