# The two commands of the README: `make demo` runs the system, `make test` runs the tests.
# Both create the virtualenv at .venv on first use; `socialpulse stack up` installs Debian's
# redis-server and prometheus when missing and resolves the Kafka broker from Maven Central.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint stack-up stack-down clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/socialpulse demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy socialpulse ingest streams alerts
	$(BIN)/lint-imports

# The tests sharing the stack run on two processes, a test module per process at a time; the
# few that stop or freeze a service of the stack (marked serial) run alone after them.
test: install lint
	$(BIN)/socialpulse stack up
	$(BIN)/pytest -m "not serial" -n 2 --dist loadfile
	$(BIN)/pytest -m serial

stack-up: install
	$(BIN)/socialpulse stack up

stack-down: install
	$(BIN)/socialpulse stack down

clean: stack-down
	rm -rf .stack
