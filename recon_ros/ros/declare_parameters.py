"""Parameter declaration with descriptions and ranges, the way ros2/demos does it, in one call."""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from recon_ros.parameters import Param, check_value


def declare(
    node: Node,
    name: str,
    default,
    description: str,
    value_range: tuple[float, float] | None = None,
    read_only: bool = True,
):
    """Declare a parameter with a description (and a range for numbers) and return its value.

    Parameters are read-only: they are read once at start-up (from config/atlas.yaml or the command
    line), and changing one later would leave the node half reconfigured.
    """
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if value_range is not None:
        low, high = value_range
        if isinstance(default, bool):
            raise ValueError(f"parameter '{name}': booleans have no range")
        if isinstance(default, int):
            descriptor.integer_range = [
                IntegerRange(from_value=int(low), to_value=int(high), step=0)
            ]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
    return node.declare_parameter(name, default, descriptor).value


def declare_table(node: Node, params: tuple[Param, ...]) -> dict:
    """Declare every parameter of a table; returns their values, checked against choices."""
    values = {}
    for p in params:
        description = p.description
        if p.choices:
            description += f" One of: {', '.join(p.choices)}."
        values[p.name] = declare(node, p.name, p.default, description, p.value_range)
        check_value(p, values[p.name])
    return values
