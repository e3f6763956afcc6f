"""Which Debian 6.12 kernel to use: the image, headers and source must be the same version.

Debian security updates move linux-source-6.12 (and the image/headers) to a new 6.12.x;
the out-of-tree kvm.ko must be built from exactly the source of the image it loads into
(vermagic and symbol CRCs), so a mismatch is a hard error with the fix in the message.
"""
import re
from dataclasses import dataclass, field

SOURCE_PACKAGE = "linux-source-6.12"


class VersionMismatch(RuntimeError):
    """The packages needed for one kernel are not all available at one version."""


@dataclass
class Policy:
    """What `apt-cache policy PKG` says about one package."""
    package: str
    installed: str | None = None
    candidate: str | None = None
    versions: list = field(default_factory=list)


def parse_policy(text: str) -> dict:
    """Parses `apt-cache policy P1 P2 ...` output into {package: Policy}; unknown packages are absent."""
    policies = {}
    current = None
    in_table = False
    for line in text.splitlines():
        head = re.match(r"^(\S+):\s*$", line)
        if head:
            current = Policy(head.group(1))
            policies[current.package] = current
            in_table = False
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("Installed:"):
            value = stripped.split(":", 1)[1].strip()
            current.installed = None if value == "(none)" else value
        elif stripped.startswith("Candidate:"):
            value = stripped.split(":", 1)[1].strip()
            current.candidate = None if value == "(none)" else value
        elif stripped.startswith("Version table:"):
            in_table = True
        elif in_table:
            # Version rows are "[***] VERSION PRIORITY"; origin rows have a priority then a URL/path.
            row = re.match(r"^\s*(?:\*\*\*\s+)?(\S+)\s+(-?\d+)\s*$", line)
            if row:
                current.versions.append(row.group(1))
    return policies


def pick_source_version(policy: Policy) -> str:
    """The installed linux-source-6.12 if any (its tarball is in /usr/src), else the candidate."""
    version = policy.installed or policy.candidate
    if not version:
        raise VersionMismatch(
            f"{SOURCE_PACKAGE} has no installed or candidate version: run `make vm-deps` "
            "(apt-get update && apt-get install linux-source-6.12)")
    return version


def abi_name(debian_version: str) -> str:
    """Kernel ABI name of a linux-6.12 Debian version: 6.12.117-1~deb12u1 -> 6.12.117+deb12."""
    # Only the security/stable (~debNN) and unstable (no suffix) forms; others are refused.
    m = re.match(r"^(\d+\.\d+(?:\.\d+)?)-[^~+]+(?:~deb(\d+)u\d+)?$", debian_version)
    if not m:
        raise VersionMismatch(f"cannot derive the kernel ABI name from Debian version '{debian_version}'")
    upstream, release = m.group(1), m.group(2)
    return f"{upstream}+deb{release}" if release else upstream


@dataclass
class KernelPackages:
    version: str          # Debian version shared by all packages, e.g. 6.12.117-1~deb12u1
    abi: str              # 6.12.117+deb12
    image: str
    headers: str
    headers_common: str
    kbuild: str

    @property
    def uname(self) -> str:
        return f"{self.abi}-amd64"

    def all(self) -> list:
        return [self.image, self.headers, self.headers_common, self.kbuild]


def packages_for(version: str) -> KernelPackages:
    abi = abi_name(version)
    return KernelPackages(version=version, abi=abi,
                          image=f"linux-image-{abi}-amd64-unsigned",
                          headers=f"linux-headers-{abi}-amd64",
                          headers_common=f"linux-headers-{abi}-common",
                          kbuild=f"linux-kbuild-{abi}")


def check_same_version(pkgs: KernelPackages, policies: dict) -> None:
    """Raises VersionMismatch naming every package that apt cannot give at pkgs.version."""
    problems = []
    for name in pkgs.all():
        pol = policies.get(name)
        if pol is None:
            problems.append(f"  {name}: unknown to apt")
        elif pkgs.version not in pol.versions and pol.installed != pkgs.version:
            have = ", ".join(pol.versions) or "none"
            problems.append(f"  {name}: available {have}")
    if problems:
        raise VersionMismatch(
            f"{SOURCE_PACKAGE} is {pkgs.version}, but the image/headers of that version are not "
            "all available:\n" + "\n".join(problems) +
            f"\nkvm.ko must be rebuilt from the source of the exact image it loads into. Fix: "
            f"`apt-get update`, then install the {SOURCE_PACKAGE} version whose image and headers "
            f"apt offers (apt-get install {SOURCE_PACKAGE}=VERSION), or pass --kernel/--modules.")
