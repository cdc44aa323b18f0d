"""Determinism ban-list: no clock read and no OS randomness in the code that must be reproducible.

The wire library, the stack (TCP included as it lands: everything under sdk/) and the simulator get
time and randomness passed in; a stray `time(nullptr)` or `std::random_device` would make a seed
stop reproducing a run. The runtime and the backends really must read the clock and ask the kernel
for entropy: each does so in one allow-listed file (for the SDK, sdk/src/os_clock.cpp and
sdk/src/os_entropy.cpp behind dpdk_net/os.hpp), and nowhere else."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Trees scanned. The first three hold the deterministic code; backends/ and runtime/ may use the
# banned calls only in their allow-listed file.
SCANNED = ("sdk", "sim", "backends", "runtime")
# Directories that must exist and contribute files, so a move cannot silently shrink the scan.
MUST_COVER = ("sdk/src/wire", "sdk/include/dpdk_net/wire", "sdk/src/stack",
              "sdk/include/dpdk_net/stack", "sim/src", "sim/include", "backends/tap/src",
              "backends/dpdk/src")
SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc", ".c", ".ipp")


def _word(name):
    return re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")


def _call(name):
    return re.compile(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"\s*\(")


# name -> pattern. Clocks first, then randomness.
BANNED = {
    **{c: _word(c) for c in ("system_clock", "steady_clock", "high_resolution_clock", "utc_clock",
                             "tai_clock", "gps_clock", "file_clock")},
    "clock_gettime": _word("clock_gettime"),
    "gettimeofday": _word("gettimeofday"),
    "timespec_get": _word("timespec_get"),
    "clock(": _call("clock"),
    "time(": _call("time"),
    "rdtsc": re.compile(r"(?<![A-Za-z0-9])_*rdtscp?(?![A-Za-z0-9])"),
    "random_device": _word("random_device"),
    "getrandom": _word("getrandom"),
    "getentropy": _word("getentropy"),
    "/dev/urandom": re.compile(r"/dev/u?random\b"),
    "rand(": _call("rand"),
    "srand": _word("srand"),
    "rand_r": _word("rand_r"),
    "random(": _call("random"),
    "drand48": re.compile(r"(?<![A-Za-z0-9_])[dlmjsen]?rand48\b"),
    "arc4random": re.compile(r"(?<![A-Za-z0-9_])arc4random\w*"),
}

# file (relative to the root) -> the banned names it alone may use. One file per component.
ALLOWED = {
    "sdk/src/os_clock.cpp": {"clock_gettime"},
    "sdk/src/os_entropy.cpp": {"getrandom"},
}


def strip_comments(text):
    """Removes // and /* */ comments (keeping line numbers); string literals are kept, so a
    "/dev/urandom" path is still seen."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def banned_in(line):
    return [name for name, pattern in BANNED.items() if pattern.search(line)]


def scan(root, trees=SCANNED, allowed=None):
    """Returns (offences, files scanned): 'path:line: name: text' for each banned use not
    allow-listed."""
    allowed = ALLOWED if allowed is None else allowed
    offences, files = [], []
    for tree in trees:
        base = root / tree
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            files.append(rel)
            permitted = allowed.get(rel, set())
            code = strip_comments(path.read_text(errors="replace"))
            for number, line in enumerate(code.splitlines(), 1):
                for name in banned_in(line):
                    if name not in permitted:
                        offences.append(f"{rel}:{number}: {name}: {line.strip()}")
    return offences, files


# Positive controls: each must be caught (at least the named entry).
MUST_MATCH = [
    ("auto t = std::chrono::steady_clock::now();", "steady_clock"),
    ("auto t = std::chrono::system_clock::now();", "system_clock"),
    ("auto t = std::chrono::high_resolution_clock::now();", "high_resolution_clock"),
    ("auto t = std::chrono::utc_clock::now();", "utc_clock"),
    ("auto t = std::chrono::tai_clock::now();", "tai_clock"),
    ("auto t = std::chrono::gps_clock::now();", "gps_clock"),
    ("auto t = std::chrono::file_clock::now();", "file_clock"),
    ("::clock_gettime(CLOCK_MONOTONIC, &ts);", "clock_gettime"),
    ("gettimeofday(&tv, nullptr);", "gettimeofday"),
    ("std::timespec_get(&ts, TIME_UTC);", "timespec_get"),
    ("const auto ticks = std::clock();", "clock("),
    ("const auto ticks = clock ();", "clock("),
    ("t = time(NULL);", "time("),
    ("t = std::time(nullptr);", "time("),
    ("t = ::time(0);", "time("),
    ("x = __rdtsc();", "rdtsc"),
    ("x = __builtin_ia32_rdtscp(&aux);", "rdtsc"),
    ("std::random_device rd;", "random_device"),
    ("::getrandom(&secret, sizeof secret, 0);", "getrandom"),
    ("getentropy(buf, 16);", "getentropy"),
    ('int fd = ::open("/dev/urandom", O_RDONLY);', "/dev/urandom"),
    ('std::ifstream in("/dev/random");', "/dev/urandom"),
    ("int r = rand();", "rand("),
    ("int r = std::rand() % 6;", "rand("),
    ("srand(42);", "srand"),
    ("r = rand_r(&state);", "rand_r"),
    ("long r = random();", "random("),
    ("double d = drand48();", "drand48"),
    ("long l = lrand48();", "drand48"),
    ("arc4random_buf(p, n);", "arc4random"),
]

# Negative controls: names in this code base (or common words) that only look similar.
MUST_NOT_MATCH = [
    "const time_ns t = sched_.next_event_time();",
    "time_ns local_now() const noexcept;",
    "using clock = std::function<time_ns()>;",
    "config_.clock_offset + global",
    "meta.rx_timestamp_ns = runtime(now);",
    "std::uint64_t operand(int brand);",
    "seeded_random(seed).next();",
    "timer_wheel wheel(time_ns{0});",
    "auto x = strand(io);",
    "const auto d = std::chrono::nanoseconds(5);",
    "rng.random_u32();",
    "std::mt19937_64 engine(seed);",
]


@pytest.mark.parametrize("line,name", MUST_MATCH)
def test_the_pattern_catches_each_banned_call(line, name):
    assert name in banned_in(line), line


@pytest.mark.parametrize("line", MUST_NOT_MATCH)
def test_the_pattern_leaves_lookalikes_alone(line):
    assert banned_in(line) == [], line


def test_comments_are_ignored_but_code_and_strings_are_not():
    code = strip_comments('// std::rand() here is prose\n/* getrandom\n time(0) */ int x;\n'
                          'y = time(0); // fine\nopen("/dev/urandom");\n')
    lines = code.splitlines()
    assert [banned_in(line) for line in lines] == [[], [], [], ["time("], ["/dev/urandom"]]


def test_the_scanner_finds_a_planted_offence_and_honours_only_exact_allowances(tmp_path):
    (tmp_path / "sdk/src/wire").mkdir(parents=True)
    (tmp_path / "sdk/src/wire/bad.cpp").write_text("int f() { return rand(); }\n")
    (tmp_path / "sdk/src/os_clock.cpp").write_text(
        "void a() { clock_gettime(CLOCK_MONOTONIC, &t); }\nvoid b() { getrandom(p, n, 0); }\n")
    offences, files = scan(tmp_path, allowed={"sdk/src/os_clock.cpp": {"clock_gettime"}})
    assert sorted(files) == ["sdk/src/os_clock.cpp", "sdk/src/wire/bad.cpp"]
    # The allowed file may read the clock, but not call getrandom; the wire file may do neither.
    assert offences == ["sdk/src/os_clock.cpp:2: getrandom: void b() { getrandom(p, n, 0); }",
                        "sdk/src/wire/bad.cpp:1: rand(: int f() { return rand(); }"]


def test_every_covered_tree_is_scanned():
    _, files = scan(ROOT)
    for tree in MUST_COVER:
        assert any(f.startswith(tree + "/") for f in files), f"{tree} contributed no file"


def test_allow_list_is_one_live_file_per_component():
    components = {}
    for rel, names in ALLOWED.items():
        path = ROOT / rel
        assert path.is_file(), f"allow-listed {rel} does not exist"
        code = strip_comments(path.read_text())
        used = {name for line in code.splitlines() for name in banned_in(line)}
        assert used == names, f"{rel} is allowed {names} but uses {used}: a stale entry"
        # sdk/src/os_clock.cpp and os_entropy.cpp are the SDK's two; any other component
        # (backends/<name>, runtime) gets at most one file.
        parts = rel.split("/")
        component = "/".join(parts[:2]) if parts[0] == "backends" else parts[0]
        components.setdefault(component, []).append(rel)
    for component, rels in components.items():
        limit = 2 if component == "sdk" else 1
        assert len(rels) <= limit, f"{component} has {len(rels)} allow-listed files: {rels}"


def test_no_clock_or_os_randomness_outside_the_allow_listed_files():
    offences, _ = scan(ROOT)
    assert not offences, "\n".join(offences)
