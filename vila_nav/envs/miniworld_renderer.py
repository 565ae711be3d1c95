"""First-person RGB rendering of scene specs with MiniWorld (headless OpenGL through EGL).

One MiniWorld environment (one GL context, one frame buffer) renders any number of scenes: each
scene is built once (rooms with portals for doorways, tinted floors and walls per room kind,
furniture and landmarks) and compiled into its own display list, cached by scene id, so
switching scenes between episodes costs nothing. MiniWorld's domain randomisation, its step
limit and its own motion code are not used: the caller gives the camera pose. The camera sits
`camera_height` above the agent position, looks along the heading, vertical FOV from SimConfig
(90 deg horizontal at 224 x 224), no pitch, no forward offset. Output is deterministic for a
given scene and pose.

Threads: an EGL context can be current in one thread only, so every GL use takes a lock, makes
the context current and releases it afterwards; any thread may render (the ROS bridge does from
its executor threads). Contexts: MiniWorld caches textures and meshes process-wide, so every
renderer's context shares objects with one hidden root context that lives as long as the process
(renderers can be created and closed in any order).

Multisampling: MiniWorld multisamples its frame buffers where the driver allows (edges are
anti-aliased). MiniWorld decides from pyglet's process-wide extension list, which pyglet clears
whenever a context closes and may refill while no context is current, i.e. empty; each renderer
therefore refills it from the root context before it creates its frame buffers (see _share_root).
A driver without multisampled frame buffers gets a warning: its views differ at edges from the
views the shipped model was trained on.
"""
from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vila_nav.envs.pose import miniworld_dir
from vila_nav.scenes.spec import SceneSpec

log = logging.getLogger(__name__)

_INSTALL_HINT = "the 'miniworld' simulator backend needs MiniWorld 2.1 and pyglet 1.5: pip install 'miniworld==2.1.0' (or `pip install vila_nav[sim]`)"


def import_miniworld():
    """Import MiniWorld in headless mode; ImportError naming what to install if missing."""
    try:
        import pyglet
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(_INSTALL_HINT) from exc
    pyglet.options["headless"] = True  # off-screen EGL context; must precede pyglet.gl/window
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import miniworld.miniworld as mw
    except ImportError as exc:  # pragma: no cover
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return mw


_ROOT_LOCK = threading.RLock()  # guards the root context and MiniWorld's process-wide caches
_ROOT: list = []  # the hidden pyglet window whose context all renderers share objects with


def _share_root():
    """Make the process-wide root context current in this thread (created on first use)."""
    import pyglet

    if not _ROOT:
        _ROOT.append(pyglet.window.Window(width=1, height=1, visible=False))
    _ROOT[0].switch_to()
    # pyglet keeps one process-wide gl_info (the extension list MiniWorld's FrameBuffer reads to
    # choose multisampling). Closing a context clears it, and pyglet can then refill it while no
    # context of this thread is current, i.e. with no extensions: the next renderer would
    # silently fall back to a non-multisampled frame buffer and render edges differently (seen
    # after a renderer was closed on another thread). Refill it from the root context, current now.
    pyglet.gl.gl_info.remove_active_context()
    pyglet.gl.gl_info.set_active_context()


def _upload_texture(path: str):
    """Decode a PNG with OpenCV and upload it like miniworld.opengl.Texture.load does (RGB, mipmaps,
    trilinear filtering). pyglet's own loader converts pixel formats in pure Python (about 1 s per
    1024 x 1024 texture here); the result is the same texture."""
    import ctypes
    from types import SimpleNamespace

    import cv2
    from pyglet.gl import (
        GL_GENERATE_MIPMAP_HINT,
        GL_LINEAR,
        GL_LINEAR_MIPMAP_LINEAR,
        GL_NICEST,
        GL_RGB,
        GL_RGBA,
        GL_TEXTURE_2D,
        GL_TEXTURE_MAG_FILTER,
        GL_TEXTURE_MIN_FILTER,
        GL_UNPACK_ALIGNMENT,
        GL_UNSIGNED_BYTE,
        GLuint,
        glBindTexture,
        glGenerateMipmap,
        glGenTextures,
        glHint,
        glPixelStorei,
        glTexImage2D,
        glTexParameteri,
    )

    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read texture {path}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGBA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGBA)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    img = np.ascontiguousarray(img[::-1])  # GL rows go bottom-up, as pyglet hands them over
    h, w = img.shape[:2]
    tex_id = GLuint(0)
    glGenTextures(1, ctypes.byref(tex_id))
    glBindTexture(GL_TEXTURE_2D, tex_id)
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1)
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGB, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, img.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)))
    glHint(GL_GENERATE_MIPMAP_HINT, GL_NICEST)
    glGenerateMipmap(GL_TEXTURE_2D)
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR)
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR_MIPMAP_LINEAR)
    glBindTexture(GL_TEXTURE_2D, 0)
    return SimpleNamespace(target=GL_TEXTURE_2D, id=tex_id.value, width=w, height=h)


@contextlib.contextmanager
def _fast_textures():
    """Within the block, MiniWorld loads textures with _upload_texture (scoped patch)."""
    from miniworld.opengl import Texture

    original = Texture.__dict__["load"]
    Texture.load = classmethod(lambda cls, path: _upload_texture(path))
    try:
        yield
    finally:
        Texture.load = original


@dataclass
class _Built:
    """One compiled scene."""

    list_id: int
    rooms: list
    entities: list
    bounds: tuple[float, float, float, float]


_WORLD_CLASS: list = []


def _make_world_class(mw):
    """The MiniWorld subclass (defined once MiniWorld is importable, then reused)."""
    if _WORLD_CLASS:
        return _WORLD_CLASS[0]
    from miniworld.params import DEFAULT_PARAMS
    from pyglet.gl import (
        GL_AMBIENT,
        GL_AMBIENT_AND_DIFFUSE,
        GL_COLOR_MATERIAL,
        GL_COMPILE,
        GL_DIFFUSE,
        GL_FRONT_AND_BACK,
        GL_LIGHT0,
        GL_LIGHTING,
        GL_POLYGON,
        GL_POSITION,
        GL_QUADS,
        GL_SMOOTH,
        GL_TEXTURE_2D,
        GLfloat,
        glBegin,
        glCallList,
        glColor3f,
        glColorMaterial,
        glEnable,
        glEnd,
        glEndList,
        glGenLists,
        glLightfv,
        glNewList,
        glNormal3f,
        glShadeModel,
        glTexCoord2f,
        glVertex3f,
    )

    from vila_nav.envs.miniworld_furniture import make_entity
    from vila_nav.scenes.vocabulary import CEILING_TEX, ROOM_KINDS

    class TintedRoom(mw.Room):
        """A MiniWorld room whose floor and wall textures are multiplied by a colour."""

        def __init__(self, outline, floor_tint, wall_tint, **kwargs):
            super().__init__(outline, **kwargs)
            self.floor_tint = floor_tint
            self.wall_tint = wall_tint

        def _render(self):
            glColor3f(*self.floor_tint)
            self.floor_tex.bind()
            glBegin(GL_POLYGON)
            glNormal3f(0, 1, 0)
            for i in range(self.floor_verts.shape[0]):
                glTexCoord2f(*self.floor_texcs[i, :])
                glVertex3f(*self.floor_verts[i, :])
            glEnd()
            glColor3f(1, 1, 1)
            self.ceil_tex.bind()
            glBegin(GL_POLYGON)
            glNormal3f(0, -1, 0)
            for i in range(self.ceil_verts.shape[0]):
                glTexCoord2f(*self.ceil_texcs[i, :])
                glVertex3f(*self.ceil_verts[i, :])
            glEnd()
            glColor3f(*self.wall_tint)
            self.wall_tex.bind()
            glBegin(GL_QUADS)
            for i in range(self.wall_verts.shape[0]):
                glNormal3f(*self.wall_norms[i, :])
                glTexCoord2f(*self.wall_texcs[i, :])
                glVertex3f(*self.wall_verts[i, :])
            glEnd()

    class SpecWorld(mw.MiniWorldEnv):
        """MiniWorld environment that builds its world from a SceneSpec."""

        def __init__(self, width: int, height: int):
            self._spec: SceneSpec | None = None
            self._list_id = 0
            params = DEFAULT_PARAMS.no_random()
            params.set("sky_color", [0.55, 0.55, 0.55])
            params.set("light_pos", [0.0, 2.5, 0.0])
            params.set("light_color", [0.7, 0.7, 0.7])
            params.set("light_ambient", [0.45, 0.45, 0.45])
            said = io.StringIO()  # MiniWorld prints its frame buffer fallbacks
            with contextlib.redirect_stdout(said), _fast_textures():
                super().__init__(
                    max_episode_steps=2**31 - 1,
                    obs_width=width,
                    obs_height=height,
                    window_width=64,
                    window_height=64,
                    params=params,
                    domain_rand=False,
                )
            if "non-multisampled" in said.getvalue():
                log.warning("MiniWorld fell back to non-multisampled frame buffers (no multisampled frame "
                            "buffers on this OpenGL driver): edges render aliased, unlike the views the "
                            "shipped model was trained on")

        def _gen_world(self):
            spec = self._spec
            if spec is None:  # MiniWorldEnv.__init__ resets once: a placeholder room
                self.add_rect_room(0.0, 1.0, 0.0, 1.0)
                self.place_agent(pos=np.array([0.5, 0.0, 0.5]), dir=0.0)
                return
            for r in spec.rooms:
                kind = ROOM_KINDS.get(r.kind)
                if kind is None:
                    raise ValueError(f"scene {spec.scene_id}: room {r.room_id} has unknown kind {r.kind!r}; known: {sorted(ROOM_KINDS)}")
                # MiniWorld rectangle outline: edges 0 east (x=max_x), 1 north (z=min_z), 2 west (x=min_x), 3 south (z=max_z)
                outline = np.array([[r.max_x, r.max_z], [r.max_x, r.min_z], [r.min_x, r.min_z], [r.min_x, r.max_z]])
                room = TintedRoom(
                    outline,
                    kind.floor_tint,
                    kind.wall_tint,
                    wall_height=spec.wall_height,
                    floor_tex=kind.floor_tex,
                    wall_tex=kind.wall_tex,
                    ceil_tex=CEILING_TEX,
                )
                for d in spec.doors_of(r.room_id):
                    if d.axis == "x":
                        edge = 1 if abs(d.line - r.min_z) < 1e-6 else 3 if abs(d.line - r.max_z) < 1e-6 else None
                        kw = {"min_x": d.lo, "max_x": d.hi}
                    else:
                        edge = 0 if abs(d.line - r.max_x) < 1e-6 else 2 if abs(d.line - r.min_x) < 1e-6 else None
                        kw = {"min_z": d.lo, "max_z": d.hi}
                    if edge is None:
                        raise ValueError(f"scene {spec.scene_id}: door {d.door_id} is not on a wall of room {r.room_id}")
                    room.add_portal(edge, max_y=d.height, **kw)
                self.rooms.append(room)
            for obj in spec.objects:
                self.entities.append(make_entity(obj))
            x0, x1, z0, z1 = spec.bounds
            self.place_agent(pos=np.array([(x0 + x1) / 2, 0.0, (z0 + z1) / 2]), dir=0.0)

        def _render_static(self):
            """Compile lights, rooms and static entities into a fresh display list."""
            self._list_id = int(glGenLists(1))
            glNewList(self._list_id, GL_COMPILE)
            # Directional light (w = 0) from above: walls of each orientation get a distinct shade.
            glLightfv(GL_LIGHT0, GL_POSITION, (GLfloat * 4)(0.35, 1.0, 0.55, 0.0))
            glLightfv(GL_LIGHT0, GL_AMBIENT, (GLfloat * 4)(*self.light_ambient))
            glLightfv(GL_LIGHT0, GL_DIFFUSE, (GLfloat * 4)(*self.light_color))
            glEnable(GL_LIGHTING)
            glEnable(GL_LIGHT0)
            glShadeModel(GL_SMOOTH)
            glEnable(GL_COLOR_MATERIAL)
            glColorMaterial(GL_FRONT_AND_BACK, GL_AMBIENT_AND_DIFFUSE)
            glEnable(GL_TEXTURE_2D)
            for room in self.rooms:
                room._render()
            glEnable(GL_TEXTURE_2D)
            for ent in self.entities:
                if ent.is_static:
                    ent.render()
            glEnable(GL_TEXTURE_2D)
            glEndList()

        def _render_world(self, frame_buffer, render_agent):
            glCallList(self._list_id)
            return frame_buffer.resolve()

    _WORLD_CLASS.append(SpecWorld)
    return SpecWorld


class MiniWorldRenderer:
    """Renders (H, W, 3) uint8 RGB views of scene specs.

    width, height: image size (px); vfov_deg: vertical field of view (deg); camera_height: metres
    above the floor; max_scenes: compiled scenes kept (least recently used are freed).
    """

    def __init__(self, width: int, height: int, vfov_deg: float, camera_height: float, max_scenes: int = 16):
        mw = import_miniworld()
        self.width, self.height = width, height
        self.vfov_deg, self.camera_height = vfov_deg, camera_height
        self.max_scenes = max_scenes
        self._built: OrderedDict[str, _Built] = OrderedDict()
        self._current: str | None = None
        self._lock = threading.RLock()
        with _ROOT_LOCK:
            _share_root()  # the new context shares objects with the root (pyglet shares with the current one)
            self._world = _make_world_class(mw)(width, height)
            self._configure_camera()
            self._release()

    @contextlib.contextmanager
    def _gl(self):
        """Hold the renderer's GL context in this thread for the duration of the block."""
        with self._lock:
            self._world.shadow_window.switch_to()
            try:
                yield
            finally:
                self._release()

    def _release(self) -> None:
        """Un-bind the EGL context from this thread so another thread can bind it."""
        ctx = getattr(self._world.shadow_window, "context", None)
        display = getattr(ctx, "display_connection", None)
        if display is not None:  # pyglet's headless (EGL) context
            from pyglet import gl
            from pyglet.libs.egl import egl

            egl.eglMakeCurrent(display, 0, 0, None)  # EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT
            gl.current_context = None

    def _configure_camera(self) -> None:
        agent = self._world.agent
        agent.cam_height = self.camera_height
        agent.cam_fov_y = self.vfov_deg
        agent.cam_pitch = 0.0
        agent.cam_fwd_disp = 0.0

    def use(self, spec: SceneSpec) -> None:
        """Make `spec` the scene to render (built and compiled on first use)."""
        if self._current == spec.scene_id and spec.scene_id in self._built:
            return
        built = self._built.get(spec.scene_id)
        if built is None:
            with _ROOT_LOCK, self._gl():
                built = self._build(spec)
        self._built.move_to_end(spec.scene_id)
        w = self._world
        w._list_id, w.rooms, w.entities = built.list_id, built.rooms, built.entities
        w.min_x, w.max_x, w.min_z, w.max_z = built.bounds
        self._current = spec.scene_id

    def _build(self, spec: SceneSpec) -> _Built:
        from pyglet.gl import glDeleteLists

        w = self._world
        w._spec = spec
        with contextlib.redirect_stdout(io.StringIO()), _fast_textures():
            w.reset()  # MiniWorldEnv.reset: _gen_world, static data, display list, one render
        self._configure_camera()  # reset() made a fresh Agent
        built = _Built(w._list_id, w.rooms, w.entities, (w.min_x, w.max_x, w.min_z, w.max_z))
        self._built[spec.scene_id] = built
        while len(self._built) > self.max_scenes:
            sid, old = self._built.popitem(last=False)
            glDeleteLists(old.list_id, 1)  # the caller holds the context
            if sid == self._current:
                self._current = None
        return built

    def render(self, x: float, z: float, yaw: float) -> np.ndarray:
        """RGB (H, W, 3) uint8 seen from floor position (x, z) (m) with Habitat yaw (rad)."""
        if self._current is None:
            raise RuntimeError("MiniWorldRenderer.render: no scene selected (call use(spec) first)")
        with self._gl():
            agent = self._world.agent
            agent.pos = np.array([x, 0.0, z])
            agent.dir = miniworld_dir(yaw)
            return self._world.render_obs()

    def close(self) -> None:
        """Free display lists and the GL context."""
        from pyglet.gl import glDeleteLists

        w = self._world
        if w is None:
            return
        with self._lock:
            w.shadow_window.switch_to()
            for built in self._built.values():
                glDeleteLists(built.list_id, 1)
            self._built.clear()
            w.close()
            w.shadow_window.close()
            self._world = None
            self._current = None

