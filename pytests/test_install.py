"""cmake --install, then a separate project finds the package and builds and runs against it."""
import shutil
import subprocess

from conftest import ROOT


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"
    return r


def test_consumer_builds_against_the_installed_sdk(build_dir, tmp_path):
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", str(build_dir), "--prefix", str(prefix)])
    cfg = prefix / "lib" / "cmake" / "dpdk_net"
    for f in ("dpdk_netConfig.cmake", "dpdk_netConfigVersion.cmake", "dpdk_netTargets.cmake"):
        assert (cfg / f).is_file(), f
    assert (prefix / "include" / "dpdk_net" / "wire" / "tcp.hpp").is_file()
    assert (prefix / "bin" / "dpdk-net-decode").is_file()
    cache = (build_dir / "CMakeCache.txt").read_text()
    compiler = next(line.split("=", 1)[1] for line in cache.splitlines()
                    if line.startswith("CMAKE_CXX_COMPILER:"))
    consumer = tmp_path / "consumer"
    shutil.copytree(ROOT / "tests" / "install" / "consumer", consumer)
    run(["cmake", "-S", str(consumer), "-B", str(consumer / "build"), "-G", "Ninja",
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCMAKE_CXX_COMPILER={compiler}"])
    run(["cmake", "--build", str(consumer / "build")])
    out = run([str(consumer / "build" / "consumer")]).stdout
    assert "consumer: OK" in out
    if "add_library(dpdk_net::dpdk " in (cfg / "dpdk_netTargets.cmake").read_text():
        assert "dpdk backend linked" in out


def test_version_file_refuses_another_minor_version(build_dir, tmp_path):
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", str(build_dir), "--prefix", str(prefix)])
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.25)\nproject(p LANGUAGES CXX)\n"
        "find_package(dpdk_net 0.2 QUIET)\n"
        "if(dpdk_net_FOUND)\n  message(FATAL_ERROR \"0.2 must not match\")\nendif()\n")
    run(["cmake", "-S", str(probe), "-B", str(probe / "build"), f"-DCMAKE_PREFIX_PATH={prefix}"])
