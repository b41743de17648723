"""`actionforge` with the test generators registered: `python worker_with_test_generators.py
worker -Q ...` runs the real worker command, able to run jobs that use them."""

from plugins_for_tests import register_test_plugins

from service.cli.app import app

if __name__ == "__main__":
    register_test_plugins()
    app(prog_name="actionforge")
