"""rclpy start-up, shutdown and background spinning that work the same on Humble, Jazzy, Kilted.

- `require_rclpy()` imports rclpy or raises one clear error saying how to get it.
- `init()` / `shutdown()` use the explicit forms (the context-manager form crashes on Jazzy and
  `rclpy.try_shutdown` is not at top level on Humble). `init(own_signals=True)` turns rclpy's
  SIGINT handler off, so Ctrl-C reaches Python as KeyboardInterrupt while the context is still
  valid and the node can publish a last zero velocity before shutting down.
- `Spinner` runs a MultiThreadedExecutor on a background thread (tests, `vila-nav bench-ros`);
  a callback that raises is printed at once and raised again by `stop()`, and spinning goes on.
"""
from __future__ import annotations

import threading
import time
import traceback

ROS_MISSING = (
    "ROS 2 Python (rclpy) is not available: source /opt/ros/<distro>/setup.bash "
    "or pip install vila_nav[ros]"
)


def require_rclpy():
    """Import and return rclpy, or raise RuntimeError(ROS_MISSING)."""
    try:
        import rclpy
        import rclpy.executors  # noqa: F401 - fails too when the rmw library is missing
    except ImportError as exc:
        raise RuntimeError(f"{ROS_MISSING} ({exc})") from None
    return rclpy


def init(args=None, *, context=None, domain_id: int | None = None, own_signals: bool = False):
    """rclpy.init for `context` (a fresh one if None); returns the context."""
    rclpy = require_rclpy()
    from rclpy.context import Context

    context = context if context is not None else Context()
    kwargs = {"args": args, "context": context}
    if domain_id is not None:
        kwargs["domain_id"] = int(domain_id)
    if own_signals:
        try:  # Humble and later
            from rclpy.signals import SignalHandlerOptions

            kwargs["signal_handler_options"] = SignalHandlerOptions.NO
        except ImportError:  # pragma: no cover - pre-Humble
            pass
    rclpy.init(**kwargs)
    return context


def shutdown(context) -> None:
    """Shut `context` down if it is still up (never raises for an already shut context)."""
    rclpy = require_rclpy()
    try:
        if context.ok():
            rclpy.shutdown(context=context)
    except Exception:  # noqa: BLE001 - already shut down elsewhere (signal handler)
        pass


class Spinner:
    """Spin nodes on a MultiThreadedExecutor in a background thread until `stop()`.

    rclpy hands a callback's exception back to the thread that spins. Left alone it would end
    the spin thread, and every node on this executor would go silent with no sign of why (a test
    then sees "no message for 10 s"). Instead the exception is printed when it happens, spinning
    goes on, and `stop()` raises it again so that the test or command fails with the real cause.
    """

    def __init__(self, nodes, context, num_threads: int = 4) -> None:
        require_rclpy()
        from rclpy.executors import MultiThreadedExecutor

        self.executor = MultiThreadedExecutor(num_threads=num_threads, context=context)
        for node in nodes:
            self.executor.add_node(node)
        self.errors: list[Exception] = []  # exceptions raised by callbacks, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="vila_nav-spin", daemon=True)
        self._thread.start()

    def add(self, node) -> None:
        self.executor.add_node(node)

    def _spin(self) -> None:
        while not self._stop.is_set() and self.executor.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as exc:  # noqa: BLE001 - sorted below
                if self._stop.is_set() or not self.executor.context.ok():
                    break  # the context was shut down under us: a normal end
                self.errors.append(exc)
                traceback.print_exception(exc)

    def stop(self) -> None:
        """Stop spinning and shut the executor down; raises RuntimeError if a callback raised."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        # Let callbacks already handed to the thread pool finish: rclpy's shutdown destroys the
        # executor's guard condition before it waits for them, and a late one would then fail.
        time.sleep(0.1)
        self.executor.shutdown(timeout_sec=1.0)
        if self.errors:
            first = self.errors[0]
            raise RuntimeError(f"{len(self.errors)} callback(s) raised while spinning; the first: "
                               f"{type(first).__name__}: {first}") from first


def spin_until_interrupted(executor, period_s: float = 0.2) -> None:
    """Spin until Ctrl-C / SIGTERM (raised as KeyboardInterrupt) or the context shuts down.

    spin_once with a timeout hands control back to Python every `period_s`, so a signal is acted
    on even when no callback is due (rcl_wait would otherwise block until the next message).
    Must run on the main thread (it installs the SIGTERM handler ros2 launch escalates to).
    """
    import signal

    def _terminate(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        while executor.context.ok():
            executor.spin_once(timeout_sec=period_s)
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_node(make_node, name: str, argv=None, *, num_threads: int = 4) -> int:
    """Run one node until Ctrl-C / SIGTERM: the body of every console-script `main`.

    `make_node(context)` builds the node; its `close()` runs before `destroy_node()` (the
    navigation node publishes its last zero velocity there). Returns 2 for bad parameters
    (logged as fatal), else 0.
    """
    rclpy = require_rclpy()
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from vila_nav.ros.params import ParameterError

    context = init(argv, own_signals=True)
    node = None
    try:
        try:
            node = make_node(context)
        except ParameterError as exc:
            rclpy.logging.get_logger(name).fatal(f"bad parameters: {exc}")
            return 2
        executor = MultiThreadedExecutor(num_threads=num_threads, context=context)
        executor.add_node(node)
        spin_until_interrupted(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        shutdown(context)
    return 0


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(own arguments, ROS arguments): everything from `--ros-args` on goes to rclpy.init, so the
    usual remapping works (`--ros-args -r vila_nav/instruction:=/robot/instruction`)."""
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        return argv[:i], ["vila-nav"] + argv[i:]
    return list(argv), ["vila-nav"]
