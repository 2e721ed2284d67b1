"""The local Apache Kafka broker: single node, KRaft (broker + controller), from Maven Central.

The jars are resolved with mvn into the project-local cache; storage is formatted once with
``kafka.tools.StorageTool``; the broker runs as ``java -cp 'lib/*' kafka.Kafka server.properties``.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from socialpulse.devtools.stack.prereqs import require_java, require_maven
from socialpulse.devtools.stack.process import StackError

# Pinned: faust-streaming 0.15.3 / aiokafka 0.14 and kafka-python 3.0 run against it;
# docker-compose.yml uses the same version (a test checks they agree).
KAFKA_VERSION = "4.0.0"
HEAP = "512m"


def _resource(name: str) -> Path:
    return Path(str(resources.files("socialpulse.devtools.stack") / name))


def lib_dir(folder: Path) -> Path:
    """Where the broker's jars for the pinned version live."""
    return folder / f"lib-{KAFKA_VERSION}"


def resolve_jars(folder: Path, maven_cache: Path) -> Path:
    """Resolve the broker jars from Maven Central (first run only); return the lib folder."""
    lib = lib_dir(folder)
    done = lib / ".resolved"
    if done.is_file():
        return lib
    mvn = require_maven()
    print(
        f"kafka: resolving Apache Kafka {KAFKA_VERSION} from Maven Central into {maven_cache} "
        "(first run only) ...",
        flush=True,
    )
    lib.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(_resource("kafka-pom.xml")),
            f"-Dmaven.repo.local={maven_cache}",
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise StackError(
            "kafka: mvn could not resolve the broker from Maven Central:\n"
            f"{(result.stdout + result.stderr).strip()[-1500:]}\n"
            "Check that Maven Central is reachable, then run `socialpulse stack up` again."
        )
    done.write_text(KAFKA_VERSION)
    return lib


SASL_USER = "socialpulse"


def sasl_password(folder: Path) -> str:
    """The password of the local broker's SASL user, made once per stack (in .stack/, never in
    the repository)."""
    path = folder / "sasl-password"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def server_properties(folder: Path, port: int) -> Path:
    """Write the broker's server.properties (127.0.0.1 only): PLAINTEXT on ``port``, the
    controller on port + 1, and SASL_PLAINTEXT (PLAIN, user ``socialpulse``) on port + 2 for
    trying and testing authenticated clients."""
    controller, sasl = port + 1, port + 2
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{SASL_USER}="{sasl_password(folder)}";'
    )
    props = folder / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
                f"SASL://127.0.0.1:{sasl}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL://127.0.0.1:{sasl}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map="
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN",
                "listener.name.sasl.sasl.enabled.mechanisms=PLAIN",
                f"listener.name.sasl.plain.sasl.jaas.config={jaas}",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={folder / 'data'}",
                "num.partitions=6",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                # One local broker: no point waiting for more members before the first rebalance.
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=48",
                "",
            ]
        )
    )
    return props


def new_cluster_id(draw: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A random KRaft cluster id (a UUID in URL-safe base64, as ``kafka-storage random-uuid``
    prints), never one that starts with "-": the storage tool's argument parser would read
    that as an option and refuse to format (one fresh machine in 64). Kafka's own Uuid draws
    again in that case; so does this."""
    while True:
        text = base64.urlsafe_b64encode(draw().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def prepare(folder: Path, maven_cache: Path, port: int) -> None:
    """Resolve jars, write the config and format storage (only if not formatted yet)."""
    java = require_java()
    lib = resolve_jars(folder, maven_cache)
    props = server_properties(folder, port)
    if (folder / "data" / "meta.properties").is_file():
        return
    result = subprocess.run(
        [
            java,
            "-cp",
            f"{lib}/*",
            f"-Dlog4j.configuration=file:{_resource('kafka-log4j.properties')}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(props),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"kafka: formatting storage in {folder / 'data'} failed:\n"
            f"{(result.stdout + result.stderr).strip()[-1500:]}"
        )


def command(folder: Path) -> list[str]:
    """The broker's command line."""
    java = require_java()
    return [
        java,
        "-Xms256m",
        f"-Xmx{HEAP}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{_resource('kafka-log4j.properties')}",
        "-cp",
        f"{lib_dir(folder)}/*",
        "kafka.Kafka",
        str(folder / "server.properties"),
    ]


def answers(bootstrap: str) -> bool:
    """True when the broker answers metadata requests."""
    import socket

    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = bootstrap.rpartition(":")
    # Only ask once the port is open: kafka-python logs every refused connection as an ERROR
    # and keeps retrying, which made a normal start-up look like a failure.
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, client_id="socialpulse-probe"
        )
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()
