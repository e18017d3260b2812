"""A real cluster of server processes, driven through the `zpomelo` command line."""
import json
import subprocess
import sys


class ProcessCluster:
    """A real cluster started by the real command line (``zpomelo start -D``) in ``project_dir``."""

    def __init__(self, project_dir, env="test", username="admin", password="admin"):
        self.project_dir = str(project_dir)
        self.env = env
        self.auth = ["-u", username, "-p", password]
        self.master = None

    def zpomelo(self, *args, timeout=60, check=True):
        cmd = [sys.executable, "-m", "zpomelo.cli", *args]
        run = subprocess.run(cmd, cwd=self.project_dir, capture_output=True, text=True, timeout=timeout)
        if check and run.returncode != 0:
            raise AssertionError("%s failed (%s): %s%s" % (" ".join(args), run.returncode, run.stdout, run.stderr))
        if "--json" in args and run.returncode == 0:
            return json.loads(run.stdout)
        return run

    def start(self, timeout=60):
        self.master = self.zpomelo("start", "-D", "-e", self.env, "--json", timeout=timeout)
        return self

    def servers(self):
        return {row["id"]: row for row in self.zpomelo("list", "-e", self.env, "--json", *self.auth)}

    def stop(self):
        self.zpomelo("stop", "-e", self.env, *self.auth, check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
