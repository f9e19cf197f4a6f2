# Source this file (bash) from the repository root to get the project's ROS 2 environment without
# an apt install of ROS: the virtual environment with the ROS 2 Kilted wheels, plus the colcon
# install of recon_ros (and the tf2_msgs interfaces) when it has been built (`make build`).
#   source tools/ros_env/activate.sh
_recon_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_recon_venv="${RECON_ROS_VENV:-$_recon_root/.venv}"
export VIRTUAL_ENV="$_recon_venv"
case ":$PATH:" in *":$_recon_venv/bin:"*) ;; *) export PATH="$_recon_venv/bin:$PATH" ;; esac
# The wheels install their ament index and CMake configs into the venv prefix.
case ":${AMENT_PREFIX_PATH:-}:" in *":$_recon_venv:"*) ;; *) export AMENT_PREFIX_PATH="$_recon_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$_recon_venv:"*) ;; *) export CMAKE_PREFIX_PATH="$_recon_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
if [ -f "$_recon_root/.ros_ws/install/setup.bash" ]; then
  # colcon's scripts read unset variables
  _recon_u=$(set +o | grep nounset); set +u
  source "$_recon_root/.ros_ws/install/setup.bash"
  eval "$_recon_u"; unset _recon_u
fi
# DDS data over UDP loopback rather than shared memory: segments left in /dev/shm by a killed node
# can leave later nodes on this machine discovering each other but receiving nothing.
export FASTDDS_BUILTIN_TRANSPORTS="${FASTDDS_BUILTIN_TRANSPORTS:-UDPv4}"
unset _recon_root _recon_venv
