"""Core pydantic types: strict fields, finite numbers, token-level arrays and their JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from environments.types import (
    Completion,
    Group,
    Message,
    Score,
    Task,
    ToolCall,
    ToolSpec,
    Trajectory,
    Usage,
)

INT32_MAX = 2**31 - 1


def _error_locs(exc: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in exc.errors()]


def _task(**kw) -> dict:
    return {"task_id": "t-1", "env": "arithmetic", "prompt": [{"role": "user", "content": "1+1?"}], **kw}


def _traj(**kw) -> Trajectory:
    return Trajectory(reward=kw.pop("reward", 1.0), **kw)


# -- unknown fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "valid"),
    [
        (Message, {"role": "user", "content": "hi"}),
        (ToolSpec, {"name": "search"}),
        (ToolCall, {"name": "search"}),
        (Task, _task()),
        (Usage, {}),
        (Completion, {"text": "x"}),
        (Score, {"reward": 1.0, "accepted": True}),
        (Trajectory, {"reward": 0.0}),
        (Group, {"group_id": "g", "env": "e", "task_id": "t", "trajectories": [{"reward": 0.0}]}),
    ],
)
def test_unknown_field_rejected_and_named(model, valid):
    model.model_validate(valid)  # the baseline is valid
    with pytest.raises(ValidationError) as info:
        model.model_validate({**valid, "surprise_field": 1})
    assert ("surprise_field",) in _error_locs(info.value)
    assert "surprise_field" in str(info.value)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_unknown_field_in_nested_model_named_with_path():
    with pytest.raises(ValidationError) as info:
        Task.model_validate(_task(prompt=[{"role": "user", "content": "x", "colour": "red"}]))
    assert ("prompt", 0, "colour") in _error_locs(info.value)


def test_unknown_field_in_trajectory_of_group():
    with pytest.raises(ValidationError) as info:
        Group.model_validate({"group_id": "g", "env": "e", "task_id": "t", "trajectories": [{"reward": 0.0, "rewrd": 1}]})
    assert ("trajectories", 0, "rewrd") in _error_locs(info.value)


def test_invalid_role_rejected():
    with pytest.raises(ValidationError) as info:
        Message(role="robot", content="hi")
    assert ("role",) in _error_locs(info.value)


# -- finite numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_reward_rejected(bad):
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=bad)
    assert ("reward",) in _error_locs(info.value)
    with pytest.raises(ValidationError) as info:
        Score(reward=bad, accepted=False)
    assert ("reward",) in _error_locs(info.value)


def test_non_finite_reward_rejected_from_json():
    with pytest.raises(ValidationError):
        Trajectory.model_validate_json('{"reward": NaN}')
    with pytest.raises(ValidationError):
        Trajectory.model_validate_json('{"reward": Infinity}')
    assert Trajectory.model_validate_json('{"reward": 0.5}').reward == 0.5


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_timings_rejected(bad):
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=0.0, timings={"sample": bad})
    assert ("timings", "sample") in _error_locs(info.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("as_array", [False, True])
def test_non_finite_logprobs_rejected(bad, as_array):
    values = [-0.1, bad, -2.0]
    arg = np.array(values, dtype=np.float64) if as_array else values
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=0.0, logprobs=arg)
    assert ("logprobs",) in _error_locs(info.value)
    assert "finite" in str(info.value)
    with pytest.raises(ValidationError) as info:
        Completion(text="x", logprobs=arg)
    assert ("logprobs",) in _error_locs(info.value)


@pytest.mark.parametrize("as_array", [False, True])
def test_logprob_overflowing_float32_rejected(as_array):
    # finite as float64 but infinite once stored as float32: must not slip through as inf
    arg = np.array([-1e300]) if as_array else [-1e300]
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=0.0, logprobs=arg)
    assert ("logprobs",) in _error_locs(info.value)


def test_huge_python_ints_are_validation_errors_not_crashes():
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=0.0, tokens=[2**70])
    assert ("tokens",) in _error_locs(info.value)
    with pytest.raises(ValidationError) as info:
        Trajectory(reward=0.0, logprobs=[-(10**400)])
    assert ("logprobs",) in _error_locs(info.value)


def test_finite_logprobs_accepted_as_float32():
    t = Trajectory(reward=0.0, logprobs=[-0.5, 0.0, -12.25])
    assert t.logprobs.dtype == np.float32
    np.testing.assert_array_equal(t.logprobs, np.array([-0.5, 0.0, -12.25], dtype=np.float32))
    # integers are numbers too
    assert Trajectory(reward=0.0, logprobs=[0, -1]).logprobs.tolist() == [0.0, -1.0]


# -- token-level lengths ----------------------------------------------------------------------------


def test_token_fields_equal_lengths_accepted():
    t = _traj(tokens=[1, 2, 3], masks=[0, 1, 1], logprobs=[0.0, -0.1, -0.2])
    assert t.num_tokens == 3
    assert _traj().num_tokens == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tokens": [1, 2, 3], "masks": [0, 1]}, ("tokens=3", "masks=2")),
        ({"tokens": [1, 2], "logprobs": [0.0, 0.0, 0.0]}, ("tokens=2", "logprobs=3")),
        ({"masks": [1], "logprobs": [0.0, 0.0]}, ("masks=1", "logprobs=2")),
        ({"tokens": [1, 2, 3], "masks": [0, 1, 1], "logprobs": [0.0]}, ("tokens=3", "masks=3", "logprobs=1")),
        ({"tokens": [], "masks": [1]}, ("tokens=0", "masks=1")),
    ],
)
def test_token_fields_length_mismatch_names_lengths(fields, expected):
    with pytest.raises(ValidationError) as info:
        _traj(**fields)
    msg = str(info.value)
    assert "equal lengths" in msg
    for part in expected:
        assert part in msg


def test_completion_length_mismatch_names_lengths():
    with pytest.raises(ValidationError) as info:
        Completion(text="x", token_ids=[1, 2, 3], logprobs=[0.0, -1.0])
    msg = str(info.value)
    assert "2 entries" in msg and "has 3" in msg
    assert len(Completion(text="x", token_ids=[1, 2], logprobs=[0.0, -1.0]).token_ids) == 2


# -- masks and token ranges -------------------------------------------------------------------------


@pytest.mark.parametrize("masks", [[0, 2], [1, 1, 5], np.array([0, 3], dtype=np.int32)])
def test_masks_only_zero_or_one(masks):
    with pytest.raises(ValidationError) as info:
        _traj(masks=masks)
    assert "masks must contain only 0 and 1" in str(info.value)


def test_masks_negative_rejected():
    with pytest.raises(ValidationError) as info:
        _traj(masks=[0, -1])
    assert ("masks",) in _error_locs(info.value)


@pytest.mark.parametrize("masks", [[], [0], [1], [0, 1, 1, 0]])
def test_masks_of_zero_and_one_accepted(masks):
    assert _traj(masks=masks).masks.tolist() == masks


@pytest.mark.parametrize(
    "tokens",
    [[-1], [0, -5], [INT32_MAX + 1], [2**40], np.array([-1], dtype=np.int64), np.array([INT32_MAX + 1], dtype=np.int64),
     np.array([2**63], dtype=np.uint64)],
)
def test_out_of_range_tokens_rejected(tokens):
    with pytest.raises(ValidationError) as info:
        _traj(tokens=tokens)
    assert ("tokens",) in _error_locs(info.value)
    with pytest.raises(ValidationError):
        Completion(text="x", token_ids=tokens)


def test_token_range_bounds_accepted():
    t = _traj(tokens=[0, INT32_MAX])
    assert t.tokens.tolist() == [0, INT32_MAX]
    assert t.tokens.dtype == np.int32


@pytest.mark.parametrize("tokens", [[True, 2], [1, False], [1, 2.0], [1, "2"], [1, None], "123", 5, {"a": 1}])
def test_bools_floats_and_non_numbers_rejected_in_tokens(tokens):
    with pytest.raises(ValidationError) as info:
        _traj(tokens=tokens)
    assert ("tokens",) in _error_locs(info.value)


@pytest.mark.parametrize("logprobs", [[True, -1.0], [-1.0, "x"], [None]])
def test_bools_and_non_numbers_rejected_in_logprobs(logprobs):
    with pytest.raises(ValidationError) as info:
        _traj(logprobs=logprobs)
    assert ("logprobs",) in _error_locs(info.value)


@pytest.mark.parametrize(
    ("field", "array"),
    [
        ("tokens", np.array([True, False])),
        ("tokens", np.array([1.0, 2.0])),
        ("tokens", np.array([[1, 2], [3, 4]])),
        ("tokens", np.array(["1", "2"])),
        ("logprobs", np.array([True])),
        ("logprobs", np.array([[0.0]])),
        ("masks", np.array([1.0])),
    ],
)
def test_bad_numpy_arrays_rejected(field, array):
    with pytest.raises(ValidationError) as info:
        _traj(**{field: array})
    assert (field,) in _error_locs(info.value)


# -- numpy arrays accepted directly -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64])
def test_integer_arrays_accepted_and_stored_as_int32(dtype):
    t = _traj(tokens=np.array([1, 2, 3], dtype=dtype), masks=np.array([0, 1, 1], dtype=dtype))
    assert isinstance(t.tokens, np.ndarray) and t.tokens.dtype == np.int32
    assert t.masks.dtype == np.int32
    assert t.tokens.tolist() == [1, 2, 3]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_number_arrays_accepted_as_logprobs_and_stored_as_float32(dtype):
    t = _traj(logprobs=np.array([0, -1, -2], dtype=dtype))
    assert isinstance(t.logprobs, np.ndarray) and t.logprobs.dtype == np.float32
    assert t.logprobs.tolist() == [0.0, -1.0, -2.0]


def test_lists_stored_as_numpy_with_fixed_dtypes():
    t = _traj(tokens=[5, 6], masks=[1, 0], logprobs=[-0.25, -0.5])
    c = Completion(text="x", token_ids=(5, 6), logprobs=(-0.25, -0.5))  # tuples too
    for arr, dtype in ((t.tokens, np.int32), (t.masks, np.int32), (t.logprobs, np.float32),
                       (c.token_ids, np.int32), (c.logprobs, np.float32)):
        assert isinstance(arr, np.ndarray)
        assert arr.dtype == dtype
        assert arr.ndim == 1


# -- JSON round trip --------------------------------------------------------------------------------


def _full_group() -> Group:
    traj = Trajectory(
        messages=[Message(role="user", content="2+2?"), Message(role="assistant", content="\\boxed{4}", reasoning="add")],
        tokens=np.array([10, 11, 12, 13], dtype=np.int64),
        masks=[0, 0, 1, 1],
        logprobs=[0.0, 0.0, -0.25, -1.5],
        reward=1.0,
        score=Score(reward=1.0, accepted=True, details={"expected": "4"}),
        finish_reason="stop",
        timings={"generate": 0.5},
    )
    other = Trajectory(tokens=[1], masks=[1], logprobs=[-3.0], reward=0.0, overlong=True)
    return Group(group_id="g-1", env="arithmetic", env_version=0, task_id="t-1", policy="p", policy_version=3,
                 trajectories=[traj, other], meta={"seed": 7})


def test_json_dump_gives_plain_lists():
    dumped = _full_group().model_dump(mode="json")
    t0 = dumped["trajectories"][0]
    assert t0["tokens"] == [10, 11, 12, 13] and type(t0["tokens"]) is list
    assert t0["masks"] == [0, 0, 1, 1] and type(t0["masks"]) is list
    assert t0["logprobs"] == [0.0, 0.0, -0.25, -1.5] and type(t0["logprobs"]) is list
    assert all(type(x) is int for x in t0["tokens"])
    assert all(type(x) is float for x in t0["logprobs"])
    json.dumps(dumped)  # plain JSON, no numpy objects left


def test_python_dump_keeps_arrays():
    t = _traj(tokens=[1, 2])
    assert isinstance(t.model_dump()["tokens"], np.ndarray)


def test_json_round_trip_equal():
    group = _full_group()
    back = Group.model_validate(group.model_dump(mode="json"))
    assert back == group
    assert back.trajectories[0].tokens.dtype == np.int32
    assert back.trajectories[0].logprobs.dtype == np.float32
    assert back.num_tokens == group.num_tokens == 5
    again = Group.model_validate_json(group.model_dump_json())
    assert again == group


def test_equality_detects_differences_in_arrays():
    a = _traj(tokens=[1, 2, 3], masks=[0, 1, 1])
    assert a == _traj(tokens=[1, 2, 3], masks=[0, 1, 1])
    assert a != _traj(tokens=[1, 2, 4], masks=[0, 1, 1])
    assert a != _traj(tokens=[1, 2, 3], masks=[1, 1, 1])
    assert a != _traj(tokens=[1, 2, 3])
    assert a != _traj(tokens=[1, 2, 3], masks=[0, 1, 1], reward=0.5)
    assert _traj(tokens=[]) == _traj(tokens=[])
    assert _traj(tokens=[]) != _traj()
    assert _traj(tokens=[1]) != Completion(text="", token_ids=[1])


def test_completion_round_trip():
    c = Completion(text="hi", token_ids=[3, 4], logprobs=[-0.5, -0.75], finish_reason="length",
                   usage=Usage(prompt_tokens=2, completion_tokens=2))
    dumped = c.model_dump(mode="json")
    assert dumped["token_ids"] == [3, 4] and dumped["logprobs"] == [-0.5, -0.75]
    assert Completion.model_validate(dumped) == c


def test_task_round_trip_and_defaults():
    t = Task.model_validate(_task(tools=[{"name": "calc", "parameters": {"type": "object"}}], verifier={"answer": "2"}))
    assert t.split == "train" and t.reasoning is False
    assert t.tools[0].type == "function"
    assert Task.model_validate(t.model_dump(mode="json")) == t


# -- other field constraints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (Task, _task(prompt=[]), ("prompt",)),
        (Task, _task(task_id=""), ("task_id",)),
        (Task, _task(split="test"), ("split",)),
        (Group, {"group_id": "g", "env": "e", "task_id": "t", "trajectories": []}, ("trajectories",)),
        (Group, {"group_id": "", "env": "e", "task_id": "t", "trajectories": [{"reward": 0}]}, ("group_id",)),
        (Group, {"group_id": "g", "env": "e", "task_id": "t", "policy_version": -1, "trajectories": [{"reward": 0}]},
         ("policy_version",)),
        (Usage, {"prompt_tokens": -1}, ("prompt_tokens",)),
        (ToolSpec, {"name": ""}, ("name",)),
        (Completion, {"text": "x", "finish_reason": "tired"}, ("finish_reason",)),
    ],
)
def test_field_constraints(model, data, loc):
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert loc in _error_locs(info.value)
