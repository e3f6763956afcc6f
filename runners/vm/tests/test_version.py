"""Version pick and matching: image/headers must be the linux-source-6.12 version (issue 6)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmdrv import version  # noqa: E402

POLICY = """linux-source-6.12:
  Installed: (none)
  Candidate: 6.12.117-1~deb12u1
  Version table:
     6.12.117-1~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 6.12.115-2~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
        100 /var/lib/dpkg/status
linux-image-6.12.117+deb12-amd64-unsigned:
  Installed: (none)
  Candidate: 6.12.117-1~deb12u1
  Version table:
     6.12.117-1~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.12.117+deb12-amd64:
  Installed: (none)
  Candidate: 6.12.117-1~deb12u1
  Version table:
     6.12.117-1~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.12.117+deb12-common:
  Installed: (none)
  Candidate: 6.12.117-1~deb12u1
  Version table:
     6.12.117-1~deb12u1 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
"""


class ParsePolicy(unittest.TestCase):
    def test_versions_candidate_installed(self):
        pol = version.parse_policy(POLICY)["linux-source-6.12"]
        self.assertIsNone(pol.installed)
        self.assertEqual(pol.candidate, "6.12.117-1~deb12u1")
        self.assertEqual(pol.versions, ["6.12.117-1~deb12u1", "6.12.115-2~deb12u1"])

    def test_installed_wins_over_candidate(self):
        text = POLICY.replace("  Installed: (none)\n  Candidate: 6.12.117-1~deb12u1\n  Version table:\n"
                              "     6.12.117-1~deb12u1 500\n        500 http://deb.debian.org/debian-security "
                              "bookworm-security/main amd64 Packages\n ***",
                              "  Installed: 6.12.115-2~deb12u1\n  Candidate: 6.12.117-1~deb12u1\n  Version table:\n"
                              " ***", 1)
        pol = version.parse_policy(text)["linux-source-6.12"]
        self.assertEqual(version.pick_source_version(pol), "6.12.115-2~deb12u1")

    def test_no_version_at_all_is_a_clear_error(self):
        with self.assertRaisesRegex(version.VersionMismatch, "make vm-deps"):
            version.pick_source_version(version.Policy("linux-source-6.12"))


class AbiName(unittest.TestCase):
    def test_security_and_unstable_versions(self):
        self.assertEqual(version.abi_name("6.12.117-1~deb12u1"), "6.12.117+deb12")
        self.assertEqual(version.abi_name("6.12.38-1"), "6.12.38")

    def test_garbage_is_rejected(self):
        with self.assertRaises(version.VersionMismatch):
            version.abi_name("latest")
        with self.assertRaises(version.VersionMismatch):   # backports ABI names differ: refused, not guessed
            version.abi_name("6.12.9-1~bpo12+1")

    def test_package_names(self):
        pkgs = version.packages_for("6.12.117-1~deb12u1")
        self.assertEqual(pkgs.image, "linux-image-6.12.117+deb12-amd64-unsigned")
        self.assertEqual(pkgs.headers, "linux-headers-6.12.117+deb12-amd64")
        self.assertEqual(pkgs.uname, "6.12.117+deb12-amd64")


class SameVersion(unittest.TestCase):
    def test_matching_set_passes_except_missing_kbuild(self):
        pkgs = version.packages_for("6.12.117-1~deb12u1")
        policies = version.parse_policy(POLICY)
        with self.assertRaises(version.VersionMismatch) as ctx:
            version.check_same_version(pkgs, policies)
        # Only the package absent from the policy output is named, with the fix.
        msg = str(ctx.exception)
        self.assertIn("linux-kbuild-6.12.117+deb12: unknown to apt", msg)
        self.assertNotIn("linux-headers-6.12.117+deb12-amd64:", msg)
        self.assertIn("apt-get install linux-source-6.12=VERSION", msg)

    def test_all_present_passes(self):
        text = POLICY + POLICY.split("linux-headers-6.12.117+deb12-common:")[1].join(
            ["linux-kbuild-6.12.117+deb12:", ""])
        version.check_same_version(version.packages_for("6.12.117-1~deb12u1"), version.parse_policy(text))

    def test_source_moved_ahead_of_image(self):
        # Security update: source at .117 but apt only has the .115 image.
        text = POLICY.replace("linux-image-6.12.117+deb12-amd64-unsigned:\n  Installed: (none)\n"
                              "  Candidate: 6.12.117-1~deb12u1\n  Version table:\n     6.12.117-1~deb12u1",
                              "linux-image-6.12.117+deb12-amd64-unsigned:\n  Installed: (none)\n"
                              "  Candidate: 6.12.115-2~deb12u1\n  Version table:\n     6.12.115-2~deb12u1")
        with self.assertRaisesRegex(version.VersionMismatch,
                                    r"linux-source-6.12 is 6.12.117-1~deb12u1(.|\n)*"
                                    r"linux-image-6.12.117\+deb12-amd64-unsigned: available 6.12.115-2~deb12u1"):
            version.check_same_version(version.packages_for("6.12.117-1~deb12u1"), version.parse_policy(text))


if __name__ == "__main__":
    unittest.main()
