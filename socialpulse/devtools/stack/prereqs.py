"""Programs the local stack needs, installed from Debian's packages when missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from socialpulse.devtools.stack.process import StackError

_apt_updated = False


def ensure_debian_program(program: str, package: str) -> str:
    """Path of ``program``; install Debian's ``package`` with apt-get first if it is missing."""
    path = shutil.which(program) or (
        f"/usr/bin/{program}" if os.path.exists(f"/usr/bin/{program}") else None
    )
    if path:
        return path
    sudo: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise StackError(f"{program} is not installed: run `apt-get install {package}` as root")
        sudo = ["sudo", "-n"]
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {package} with apt-get (for {program}) ...", flush=True)
    if not _apt_updated:
        subprocess.run(
            [*sudo, "apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL
        )
        _apt_updated = True
    done = subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    path = shutil.which(program)
    if done.returncode != 0 or not path:
        raise StackError(
            f"{program} is missing and `apt-get install {package}` failed:\n"
            f"{done.stderr.strip()[-800:]}\nInstall {package} and run again."
        )
    return path


def require_java(minimum: int = 17) -> str:
    """Path of java, checked to be at least ``minimum`` (Kafka 4 brokers need Java 17)."""
    java = shutil.which("java")
    if not java:
        raise StackError(
            f"java is not installed; Kafka needs Java {minimum}+: "
            f"`apt-get install openjdk-{minimum}-jre-headless`"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < minimum:
        raise StackError(
            f"java {major or '?'} found at {java}; Kafka needs Java {minimum}+: "
            f"`apt-get install openjdk-{minimum}-jre-headless`"
        )
    return java


def require_maven() -> str:
    """Path of mvn (used to resolve the Kafka broker from Maven Central)."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(
            "mvn is not installed; it resolves the Kafka broker from Maven Central: "
            "`apt-get install maven`"
        )
    return mvn
