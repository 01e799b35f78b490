"""The environment registry: built-ins, versions, gymnasium ids, and entry-point discovery."""

from __future__ import annotations

import sys
import textwrap
import uuid

import gymnasium
import pytest

import environments
import environments.registry as registry
from environments import Env, Observation
from environments.arithmetic import ArithmeticEnv
from environments.gym import GymEnv, PydanticSpace
from environments.tasks import TaskSource
from environments.types import Completion, Message, Score, Task


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Every test gets a copy of the registry; gymnasium ids it adds are removed afterwards."""
    monkeypatch.setattr(registry, "_specs", dict(registry._specs))
    gym_before = set(gymnasium.registry)
    modules_before = set(sys.modules)
    yield
    for gym_id in set(gymnasium.registry) - gym_before:
        del gymnasium.registry[gym_id]
    for name in set(sys.modules) - modules_before:
        if name.startswith("lachesis_test_plugin_"):
            del sys.modules[name]


class _EchoTasks(TaskSource):
    """Two train tasks and one eval task; the answer is the task's index as text."""

    def get(self, split, index):
        n = self.size(split)
        if not 0 <= index < n:
            raise IndexError(index)
        return Task(task_id=f"echo-{split}-{index}", env="echo", split=split,
                    prompt=[Message(role="user", content=f"Say {index}.")], verifier={"answer": str(index)})

    def size(self, split):
        return 2 if split == "train" else 1


class EchoTestEnv(Env):
    """Repeat the number in the prompt.

    A second paragraph that the description leaves out.
    """

    version = 3

    def __init__(self, name, **config):
        super().__init__(name, **config)
        self._tasks = _EchoTasks()

    def tasks(self):
        return self._tasks

    def verify(self, task: Task, completion: Completion) -> Score:
        ok = completion.text.strip() == task.verifier["answer"]
        return Score(reward=float(ok), accepted=ok)


class EchoTestEnvV4(EchoTestEnv):
    version = 4


class Unsuffixed(EchoTestEnv):
    """No Env suffix."""

    version = 0


# -- built-ins and lookups --------------------------------------------------------------------------


def test_arithmetic_is_registered():
    s = environments.spec("arithmetic")
    assert s.name == "arithmetic" and s.version == 0
    assert s.cls is ArithmeticEnv
    assert s.gym_id == "lachesis/Arithmetic-v0"
    assert s in environments.specs()
    assert "lachesis/Arithmetic-v0" in gymnasium.registry
    assert s.description.startswith("Arithmetic word problems")
    assert "\n" not in s.description and "Config" not in s.description


def test_make_builtin_passes_config():
    env = environments.make("arithmetic", eval_size=3, reasoning=True)
    assert isinstance(env, ArithmeticEnv)
    assert env.name == "arithmetic"
    assert env.config == {"eval_size": 3, "reasoning": True}
    assert env.tasks().size("eval") == 3


def test_unknown_name_lists_known_names():
    environments.register("echo", EchoTestEnv)
    with pytest.raises(KeyError) as info:
        environments.spec("no-such-env")
    msg = str(info.value)
    assert "no-such-env" in msg
    assert "arithmetic" in msg and "echo" in msg
    with pytest.raises(KeyError):
        environments.make("no-such-env")


def test_unknown_version_lists_versions():
    with pytest.raises(KeyError) as info:
        environments.spec("arithmetic", 7)
    msg = str(info.value)
    assert "no version 7" in msg and "[0]" in msg
    with pytest.raises(KeyError):
        environments.make("arithmetic", 7)


def test_newest_version_by_default_and_specs_sorted():
    environments.register("echo", EchoTestEnvV4)
    environments.register("echo", EchoTestEnv)
    assert environments.spec("echo").version == 4
    assert environments.spec("echo").cls is EchoTestEnvV4
    assert environments.spec("echo", 3).cls is EchoTestEnv
    assert isinstance(environments.make("echo", 3), EchoTestEnv)
    assert type(environments.make("echo")) is EchoTestEnvV4
    keys = [(s.name, s.version) for s in environments.specs()]
    assert keys == sorted(keys)
    assert ("echo", 3) in keys and ("echo", 4) in keys


def test_second_class_under_same_name_and_version_raises():
    class ImpostorEnv(ArithmeticEnv):
        pass

    with pytest.raises(ValueError, match="already registered to ArithmeticEnv"):
        environments.register("arithmetic", ImpostorEnv)
    assert environments.spec("arithmetic").cls is ArithmeticEnv  # untouched


def test_reregistering_same_class_is_idempotent():
    a = environments.register("echo", EchoTestEnv)
    b = environments.register("echo", EchoTestEnv)
    assert a == b
    assert environments.register("arithmetic", "environments.arithmetic:ArithmeticEnv").cls is ArithmeticEnv
    assert sum(1 for s in environments.specs() if s.name == "echo") == 1


def test_register_by_string_reference():
    s = environments.register("echo-by-ref", f"{__name__}:EchoTestEnv")
    assert s.cls is EchoTestEnv


@pytest.mark.parametrize("ref", [f"{__name__}:_EchoTasks", f"{__name__}:isolated_registry", Message, 42])
def test_register_rejects_non_env(ref):
    with pytest.raises(TypeError, match="not a subclass of environments.Env"):
        environments.register("bad", ref)
    assert all(s.name != "bad" for s in environments.specs())


def test_register_bad_string_reference():
    with pytest.raises(ModuleNotFoundError):
        environments.register("bad", "no_such_module_xyz:Thing")
    with pytest.raises(AttributeError):
        environments.register("bad", f"{__name__}:NoSuchClass")


def test_gym_id_title():
    assert environments.register("echo", EchoTestEnv).gym_id == "lachesis/EchoTest-v3"
    assert environments.register("unsuffixed", Unsuffixed).gym_id == "lachesis/Unsuffixed-v0"
    assert environments.spec("echo").description == "Repeat the number in the prompt."


# -- gymnasium --------------------------------------------------------------------------------------


def test_gymnasium_make_new_env():
    assert "lachesis/EchoTest-v3" not in gymnasium.registry
    environments.register("echo", EchoTestEnv)
    assert "lachesis/EchoTest-v3" in gymnasium.registry
    env = gymnasium.make("lachesis/EchoTest-v3")
    try:
        assert isinstance(env.unwrapped, GymEnv)
        assert isinstance(env.unwrapped.env, EchoTestEnv)
        assert env.unwrapped.env.name == "echo"
        obs, info = env.reset(seed=0, options={"index": 1})
        assert isinstance(obs, dict)
        assert obs == {"messages": [{"role": "user", "content": "Say 1.", "reasoning": None, "tool_calls": None,
                                     "name": None}], "tools": None}
        assert env.observation_space.contains(obs)
        assert info == {"task_id": "echo-train-1", "split": "train", "reasoning": False}

        obs, reward, terminated, truncated, info = env.step("1")
        assert reward == 1.0 and terminated is True and truncated is False
        assert info["score"]["accepted"] is True
        assert env.observation_space.contains(obs)
        assert [m["role"] for m in obs["messages"]] == ["user", "assistant"]
        assert obs["messages"][1]["content"] == "1"

        env.reset(options={"split": "eval", "index": 0})
        obs, reward, terminated, _, info = env.step({"role": "assistant", "content": "wrong"})
        assert reward == 0.0 and terminated is True
        assert info["score"]["accepted"] is False
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_gymnasium_make_builtin_arithmetic():
    env = gymnasium.make("lachesis/Arithmetic-v0")
    try:
        obs, info = env.reset(seed=123)
        assert env.observation_space.contains(obs)
        assert info["split"] == "train"
        task = env.unwrapped.env.task
        _, reward, terminated, _, info = env.step(f"\\boxed{{{task.verifier['answer']}}}")
        assert reward == 1.0 and terminated
    finally:
        env.close()


def test_gymnasium_make_passes_config():
    env = gymnasium.make("lachesis/Arithmetic-v0", reasoning=True, eval_size=5)
    try:
        _, info = env.reset(options={"split": "eval", "index": 4})
        assert info["reasoning"] is True
        with pytest.raises(IndexError):
            env.reset(options={"split": "eval", "index": 5})
    finally:
        env.close()


def test_pydantic_space():
    space = PydanticSpace(Observation)
    assert space.contains({"messages": []})
    assert space.contains({"messages": [{"role": "user", "content": "x"}], "tools": None})
    assert not space.contains({"messages": [{"role": "robot"}]})
    assert not space.contains({"messages": [], "extra": 1})
    assert not space.contains({})
    with pytest.raises(NotImplementedError):
        space.sample()
    actions = PydanticSpace(Message)
    assert actions.contains({"role": "assistant", "content": "hi"})
    assert not actions.contains({"role": "assistant", "content": 3})


def test_gym_step_rejects_invalid_action_dict():
    environments.register("echo", EchoTestEnv)
    env = GymEnv("echo", 3)
    try:
        env.reset(options={"index": 0})
        with pytest.raises(ValueError):
            env.step({"role": "assistant", "content": "0", "bogus": True})
        with pytest.raises(ValueError, match="assistant"):
            env.step({"role": "user", "content": "0"})
        _, reward, *_ = env.step("0")
        assert reward == 1.0
    finally:
        env.close()


# -- entry-point discovery --------------------------------------------------------------------------


def _install_plugin(root, group=registry.ENTRY_POINT_GROUP) -> tuple[str, str]:
    module = f"lachesis_test_plugin_{uuid.uuid4().hex[:8]}"
    (root / f"{module}.py").write_text(textwrap.dedent('''
        from environments import Env, Score

        class PluginTestEnv(Env):
            """A plugin environment from an entry point."""

            version = 2

            def tasks(self):
                raise NotImplementedError

            def verify(self, task, completion):
                return Score(reward=0.0, accepted=False)
    '''))
    dist = root / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    ep_name = f"plugin-{module[-8:]}"
    (dist / "entry_points.txt").write_text(f"[{group}]\n{ep_name} = {module}:PluginTestEnv\n")
    return module, ep_name


def test_entry_point_discovery(tmp_path, monkeypatch):
    module, ep_name = _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_discovered", False)

    found = {s.name: s for s in environments.specs()}
    assert ep_name in found
    s = found[ep_name]
    assert s.version == 2
    assert s.cls.__module__ == module and s.cls.__name__ == "PluginTestEnv"
    assert s.gym_id == "lachesis/PluginTest-v2" and s.gym_id in gymnasium.registry
    assert s.description == "A plugin environment from an entry point."
    assert "arithmetic" in found  # built-ins still there
    assert registry._discovered is True
    env = environments.make(ep_name)
    assert type(env) is s.cls and env.name == ep_name


def test_entry_point_discovery_via_spec(tmp_path, monkeypatch):
    _, ep_name = _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_discovered", False)
    assert environments.spec(ep_name).version == 2


def test_entry_point_in_other_group_ignored(tmp_path, monkeypatch):
    _, ep_name = _install_plugin(tmp_path, group="some.other.group")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_discovered", False)
    assert ep_name not in {s.name for s in environments.specs()}


def test_discovery_runs_once(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_discovered", True)  # already discovered: a new plugin is not picked up
    _, ep_name = _install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ep_name not in {s.name for s in environments.specs()}
    with pytest.raises(KeyError):
        environments.spec(ep_name)


def test_gym_id_collision_is_an_error():
    with pytest.raises(ValueError, match="lachesis/Arithmetic-v0 already belongs"):
        environments.register("arithmetic_again", ArithmeticEnv)


def test_broken_plugin_warns_and_others_still_load(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[lachesis.environments]\nbroken_env = lachesis_test_plugin_missing:NoSuchEnv\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_discovered", False)
    with pytest.warns(UserWarning, match="skipping environment 'broken_env'"):
        names = {s.name for s in environments.specs()}
    assert "arithmetic" in names and "broken_env" not in names
