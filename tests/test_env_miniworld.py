"""The embedded simulator (MiniWorld backend) through the NavEnv API: rendering, poses,
collisions and sliding, continuous motion, geodesic distances, the expert, ground-truth replay."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vila_nav.envs import SimConfig, make_env
from vila_nav.envs.pose import forward_vector, yaw_to_quat
from vila_nav.episodes import Episode, Goal, Instruction, load_r2r
from vila_nav.paths import sim_dir
from vila_nav.scenes import DoorSpec, RoomSpec, SceneNotFoundError, SceneSpec, save_scene

R = 0.1  # agent radius (m)


def _episode(scene_id: str, xz, yaw: float = 0.0, goal_xz=(0.5, 0.5)) -> Episode:
    return Episode(
        episode_id="t",
        trajectory_id="t",
        scene_id=scene_id,
        start_position=(float(xz[0]), 0.0, float(xz[1])),
        start_rotation=tuple(yaw_to_quat(yaw)),
        goals=(Goal((float(goal_xz[0]), 0.0, float(goal_xz[1])), 3.0),),
        instruction=Instruction("test"),
        reference_path=((float(xz[0]), 0.0, float(xz[1])),),
    )


@pytest.fixture(scope="module")
def test_scenes(tmp_path_factory):
    """Hand-made scenes: one open 4 x 4 m room; two rooms joined by a doorway near one end; two sealed rooms."""
    folder = tmp_path_factory.mktemp("scenes")
    a = RoomSpec("a", "bedroom", 0.0, 4.0, 0.0, 4.0)
    b = RoomSpec("b", "kitchen", 4.0, 8.0, 0.0, 4.0)
    save_scene(SceneSpec("open_room", 0, (RoomSpec("a", "living room", 0.0, 4.0, 0.0, 4.0),)), folder)
    save_scene(SceneSpec("door_rooms", 0, (a, b), (DoorSpec("d0", ("a", "b"), "z", 4.0, 3.0, 3.9),)), folder)
    save_scene(SceneSpec("sealed_rooms", 0, (a, b)), folder)
    return str(folder)


@pytest.fixture(scope="module")
def env(test_scenes):
    e = make_env(SimConfig(scenes_dir=test_scenes))
    yield e
    e.close()


@pytest.fixture(scope="module")
def house_env():
    e = make_env(SimConfig())
    yield e
    e.close()


@pytest.fixture(scope="module")
def shipped():
    return load_r2r(sim_dir() / "episodes" / "r2r", "val_unseen")


# ---- rendering -------------------------------------------------------------------------------
def test_observation_format(house_env, shipped):
    obs = house_env.reset(shipped[0])
    assert obs.shape == (224, 224, 3) and obs.dtype == np.uint8
    assert obs.std() > 5  # a real view, not a blank frame
    assert obs is not house_env.observe()  # callers own their arrays


def test_rendering_is_deterministic_also_across_a_fresh_env(house_env, shipped):
    ep = shipped[1]
    first = house_env.reset(ep)
    again = house_env.observe()
    house_env.reset(shipped[7])  # another scene and pose in between
    house_env.step("TURN_LEFT")
    back = house_env.reset(ep)
    assert np.array_equal(first, again) and np.array_equal(first, back)
    fresh = make_env(SimConfig())
    try:
        assert np.array_equal(first, fresh.reset(ep))
    finally:
        fresh.close()


def test_rendering_from_another_thread(house_env, shipped):
    """The ROS bridge renders from executor threads: same pixels as from the creating thread."""
    import threading

    expected = house_env.reset(shipped[3])
    house_env.step("TURN_RIGHT")
    got = {}

    def worker():
        house_env.step("TURN_LEFT")
        got["obs"] = house_env.observe()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert np.array_equal(got["obs"], expected)


def test_an_env_made_after_one_closed_on_another_thread_renders_the_same(house_env, shipped):
    """Envs made and closed here, then on another thread, then here again: the last one used to
    find pyglet's process-wide extension list empty and fall back to a non-multisampled frame
    buffer (about 2% of the pixels differed)."""
    import threading

    expected = house_env.reset(shipped[0])

    def fresh_view() -> np.ndarray:
        e = make_env(SimConfig())
        try:
            return e.reset(shipped[0])
        finally:
            e.close()

    before = fresh_view()
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("thread", fresh_view()))
    t.start()
    t.join()
    after = fresh_view()  # made on this thread after the other thread's env closed
    assert np.array_equal(before, expected) and np.array_equal(got["thread"], expected)
    assert np.array_equal(after, expected), f"{(after != expected).any(-1).mean():.2%} of pixels differ"


def test_camera_looks_where_the_agent_moves(house_env, shipped):
    house_env.reset(shipped[2])
    for _ in range(3):
        house_env.step("TURN_LEFT")
        house_env.observe()
        agent = house_env._renderer._world.agent  # the MiniWorld camera that rendered the view
        cam = np.array([agent.cam_dir[0], agent.cam_dir[2]])
        assert np.allclose(cam, forward_vector(house_env.heading), atol=1e-9)
        assert agent.cam_height == pytest.approx(1.25) and agent.cam_fov_y == pytest.approx(90.0)


def test_vertical_fov_gives_the_horizontal_fov():
    assert SimConfig().vfov_deg == pytest.approx(90.0)
    wide = SimConfig(width=448, height=224)
    assert math.degrees(2 * math.atan(math.tan(math.radians(wide.vfov_deg) / 2) * 448 / 224)) == pytest.approx(90.0)


# ---- poses and discrete actions --------------------------------------------------------------
def test_habitat_pose_conventions(env):
    env.reset(_episode("open_room", (2.0, 2.0), yaw=0.0))
    assert np.allclose(env.rotation, [0, 0, 0, 1])
    env.step("MOVE_FORWARD")  # identity faces -Z
    assert np.allclose(env.position, [2.0, 0.0, 1.75])
    env.step("TURN_LEFT")
    assert env.heading == pytest.approx(math.radians(15))
    assert np.allclose(env.rotation, [0, math.sin(math.radians(7.5)), 0, math.cos(math.radians(7.5))])
    for _ in range(5):
        env.step(2)  # VLN-CE id of TURN_LEFT: now facing -X (left of -Z)
    before = env.position
    env.step("MOVE_FORWARD")
    assert np.allclose(env.position - before, [-0.25, 0.0, 0.0])
    env.step("STOP")
    assert env.stopped and env.steps == 9
    with pytest.raises(ValueError, match="unknown action"):
        env.step("JUMP")


def test_walking_into_a_wall_stops_at_the_radius(env):
    env.reset(_episode("open_room", (2.0, 2.0), yaw=-math.pi / 2))  # facing +X, wall at x = 4
    xs = []
    for _ in range(12):
        env.step("MOVE_FORWARD")
        xs.append(env.position[0])
    assert max(xs) <= 4.0 - R + 1e-9
    assert xs[-1] == pytest.approx(4.0 - R, abs=1e-3)
    assert env.collided  # the last steps were blocked
    assert np.allclose(env.position[[1, 2]], [0.0, 2.0])


def test_diagonal_into_a_wall_slides_along_it(env):
    start = (3.85, 2.0)
    yaw = -math.pi / 4  # forward (x, z) = (sin 45, -cos 45): towards the wall at x = 4 and along -Z
    env.reset(_episode("open_room", start, yaw=yaw))
    env.step("MOVE_FORWARD")
    x, _, z = env.position
    assert env.collided
    assert x == pytest.approx(4.0 - R, abs=1e-3)  # held at the radius ...
    assert start[1] - z > 0.17  # ... while moving on along the wall (0.177 m without the wall)
    stuck = make_env(SimConfig(scenes_dir=env.cfg.scenes_dir, allow_sliding=False))
    try:
        stuck.reset(_episode("open_room", start, yaw=yaw))
        stuck.step("MOVE_FORWARD")
        assert stuck.collided and start[1] - stuck.position[2] < 0.06  # stops at the contact
    finally:
        stuck.close()


def test_doorway_lets_the_agent_through(env):
    env.reset(_episode("door_rooms", (3.0, 3.45), yaw=-math.pi / 2))
    for _ in range(8):
        env.step("MOVE_FORWARD")
    assert env.position[0] == pytest.approx(5.0) and not env.collided


def test_continuous_motion_and_sliding(env):
    env.reset(_episode("open_room", (2.0, 2.0), yaw=0.0))
    env.move(0.5, 0.0, 1.0)
    assert np.allclose(env.position, [2.0, 0.0, 1.5]) and not env.collided
    env.move(0.0, math.radians(90), 1.0)
    assert env.heading == pytest.approx(math.pi / 2)  # left turn: now facing -X
    env.move(0.5, 0.0, 10.0)  # drives into the wall at x = 0
    assert env.position[0] == pytest.approx(R, abs=1e-3) and env.collided
    env.move(0.4, math.radians(-45), 2.0)  # arcs away to the right: slides, then frees itself
    assert env.position[0] >= R - 1e-9
    with pytest.raises(ValueError, match="finite"):
        env.move(float("nan"), 0.0, 0.1)


# ---- geodesics and the expert ----------------------------------------------------------------
def test_geodesic_straight_line_in_an_open_room(env):
    env.reset(_episode("open_room", (0.5, 0.5)))
    for a, b in [((0.5, 0.5), (3.5, 3.5)), ((1.0, 2.0), (3.2, 2.0)), ((2.0, 0.3), (2.0, 3.7))]:
        euclid = math.dist(a, b)
        geo = env.geodesic_distance(np.array([a[0], 0, a[1]]), np.array([b[0], 0, b[1]]))
        assert geo == pytest.approx(euclid, rel=0.02, abs=0.05)


def test_geodesic_through_a_doorway_is_longer_and_sealed_rooms_are_unreachable(env):
    env.reset(_episode("door_rooms", (2.0, 1.0)))
    a, b = np.array([2.0, 0.0, 1.0]), np.array([6.0, 0.0, 1.0])
    geo = env.geodesic_distance(a, b)
    detour = math.dist((2, 1), (4, 3.0 + R)) * 2  # around the doorway's jamb at z = 3.0, kept at the radius
    assert geo > 4.0 + 1.5 and geo == pytest.approx(detour, rel=0.03)
    env.reset(_episode("sealed_rooms", (2.0, 1.0)))
    assert env.geodesic_distance(a, b) == math.inf
    assert env.geodesic_distance(a, np.array([3.0, 0.0, 3.0])) < math.inf


def test_expert_reaches_the_goal_through_a_doorway(env):
    env.reset(_episode("door_rooms", (1.0, 1.0), yaw=math.pi, goal_xz=(7.0, 1.0)))
    for _ in range(200):
        action = env.expert_action(goal_radius=0.25)
        env.step(action)
        if action == "STOP":
            break
    assert env.stopped and env.distance_to_goal() < 0.25


def test_saved_state_restores_the_pose_counters_and_the_experts_memory(env):
    """A look-ahead (save, try primitives with the expert, restore) leaves the episode as if it
    never happened: the same view and counters, and the stateful expert goes on as before."""
    episode = _episode("door_rooms", (1.0, 1.0), yaw=math.pi, goal_xz=(7.0, 1.0))

    def expert_run(lookahead_at: int) -> list[str]:
        env.reset(episode)
        actions: list[str] = []
        while len(actions) < 200 and (not actions or actions[-1] != "STOP"):
            if len(actions) == lookahead_at:
                before = (env.position, env.heading, env.steps, env.collided, env.observe())
                saved = env.save_state()
                for _ in range(7):  # wander off with the expert, and into a wall
                    env.step(env.expert_action(goal_radius=0.25))
                env.step("TURN_LEFT")
                for _ in range(8):
                    env.step("MOVE_FORWARD")
                env.restore_state(saved)
                after = (env.position, env.heading, env.steps, env.collided, env.observe())
                assert all(np.array_equal(a, b) for a, b in zip(before, after))
            actions.append(env.expert_action(goal_radius=0.25))
            env.step(actions[-1])
        return actions

    plain = expert_run(-1)
    assert plain[-1] == "STOP" and {"TURN_LEFT", "TURN_RIGHT"} & set(plain)  # it turns on the way
    for k in (1, 3, 7, 22):  # 3, 7 and 22 differ when the expert's memory is not restored
        assert expert_run(k) == plain, k
    saved = env.save_state()
    env.reset(_episode("door_rooms", (1.0, 1.0), goal_xz=(7.0, 1.0)))
    with pytest.raises(ValueError, match="another episode"):
        env.restore_state(saved)


def test_expert_follows_generated_episodes_to_the_goal(house_env, shipped):
    for ep in shipped[:6]:
        house_env.reset(ep)
        for _ in range(house_env.cfg.max_steps):
            action = house_env.expert_action()  # default: the episode goal, success distance 3 m
            house_env.step(action)
            if action == "STOP":
                break
        assert house_env.stopped, ep.episode_id
        assert house_env.distance_to_goal() < 3.0, ep.episode_id


def test_ground_truth_replays_exactly(house_env, shipped):
    names = ("STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT")
    for ep in shipped[:10]:
        house_env.reset(ep)
        got = [house_env.position]
        for a in ep.gt.actions:
            house_env.step(names[a])
            if a == 1:
                got.append(house_env.position)
        assert np.allclose(np.array(got), np.array(ep.gt.locations), atol=2e-3), ep.episode_id
        assert house_env.distance_to_goal() < 0.3


# ---- maps and errors -------------------------------------------------------------------------
def test_top_down_map(house_env, shipped):
    house_env.reset(shipped[0])
    m = house_env.top_down_map()
    h, w, c = m.image.shape
    assert c == 3 and m.image.dtype == np.uint8
    col, row = m.world_to_pixel(np.array([house_env.position]))[0]
    assert 0 <= col < w and 0 <= row < h
    assert np.allclose(m.pixel_to_world(np.array([[col, row]]))[0], house_env.position[[0, 2]], atol=m.meters_per_pixel)


def test_clear_errors(env):
    with pytest.raises(SceneNotFoundError, match="unknown scene"):
        env.reset(_episode("nowhere", (1.0, 1.0)))
    with pytest.raises(ValueError, match="not navigable"):
        env.reset(_episode("open_room", (0.02, 2.0)))  # inside the wall margin
    with pytest.raises(ValueError, match="backend"):
        SimConfig(backend="unity")


def test_bench_sim_prints_figures(capsys):
    from vila_nav.envs.bench_sim import main

    assert main(["steps=20"]) == 0
    out = capsys.readouterr().out
    assert "discrete step + render (steps/s)" in out and "reset, new scene (s)" in out
    assert main(["steps=1"]) == 2  # validated config
