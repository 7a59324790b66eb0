#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mutation testing of src/: would the tests notice a broken line?

usage: tools/mutate.py [--tier TIER[,TIER...]] [--count N] [--seed S] [--check]
                       [--list] [--report FILE] [--scale X] [--jobs J] [--keep DIR]
TIER: core (RelWithDebInfo, gcc), asan (clang, AddressSanitizer and UBSan,
MEMPOOL_DEBUG) or tsan (clang, ThreadSanitizer); with several, each judges in
turn until one kills the mutant, as the test command's tiers would.

Makes single-token mutants of src/ (a relational or equality operator
flipped, && and || swapped, a negation dropped, a + 1 or - 1 dropped, a
returned constant changed, a call statement deleted; under --tier tsan also a
memory order weakened to relaxed, which only ThreadSanitizer can judge; none
in code that only the test builds compile, MEMPOOL_FAULT_INJECTION, nor in
the internal assertions, DEBUG_ASSERT, or the crash points, SHM_STEP), each
in a scratch copy of the project, rebuilds the tier's tree incrementally and
runs its ctest tests, fastest first, two at a time, until one fails. Verdicts:
  killed     a test failed, crashed or timed out
  SURVIVED   every test passed
  equivalent it survived and tests/MUTANTS.md lists it with the reason it
             cannot change behaviour
  same-code  every object file came out byte-identical to the unmutated
             build's (code the tier does not compile, or that the compiler
             folds): provably the same program, not judged
  no-build   it does not compile: not judged
The score is killed / (killed + survived): an equivalent mutant is the same
program, which no test can tell apart. --count counts the three.

The sample is drawn from every candidate of the tier's sources, in a fixed
order, with the seed: for one commit and seed it is the same everywhere.
--seed defaults to the one recorded in tests/MUTANTS.md ("seed N").
--check (the test tier): exits 1 unless every judged mutant is killed or
listed as equivalent.
"""
import argparse, hashlib, os, random, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS_MD = os.path.join(ROOT, "tests", "MUTANTS.md")

SAN_ADDRESS = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Builds carry no debug information, so that an unchanged program gives
# byte-identical objects (column numbers would differ otherwise).
TIERS = {
    "core": (["-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG",
              "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG"], {}),
    "asan": (["-DCMAKE_C_COMPILER=clang", "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_C_FLAGS_DEBUG=",
              "-DCMAKE_CXX_FLAGS_DEBUG=", "-DMEMPOOL_DEBUG=ON", f"-DCMAKE_C_FLAGS=-O1 {SAN_ADDRESS}"],
             {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}),
    "tsan": (["-DCMAKE_C_COMPILER=clang", "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_C_FLAGS_DEBUG=",
              "-DCMAKE_CXX_FLAGS_DEBUG=", "-DCMAKE_C_FLAGS=-O1 -fsanitize=thread -fno-omit-frame-pointer"],
             {"TSAN_OPTIONS": "halt_on_error=1"}),
}

# (name, pattern, replacement); patterns run on code with comments and
# literals blanked out.
RULES = [
    ("rel", r"(?<![<>=!-])<(?![<=])", "<="),
    ("rel", r"(?<![<>=!-])>(?![>=])", ">="),
    ("rel", r"(?<![<>])<=", "<"),
    ("rel", r"(?<![<>-])>=", ">"),
    ("eq", r"==", "!="),
    ("eq", r"!=", "=="),
    ("logic", r"&&", "||"),
    ("logic", r"\|\|", "&&"),
    ("not", r"!(?!=)", ""),
    ("offby1", r" \+ 1\b(?!\.)", ""),
    ("offby1", r" - 1\b(?!\.)", ""),
    ("const", r"\breturn 0;", "return 1;"),
    ("const", r"\breturn true;", "return false;"),
    ("const", r"\breturn false;", "return true;"),
]
ORDER_RULE = ("order", r"\bmemory_order_(?:acquire|release|acq_rel|seq_cst)\b", "memory_order_relaxed")
TEST_ONLY = "MEMPOOL_FAULT_INJECTION"
# Lines that are checks or hooks of the test builds, not behaviour: the
# internal assertions and the crash points of the shared pool's tests.
TEST_ONLY_CALLS = ("DEBUG_ASSERT(", "SHM_STEP(")
CALL = re.compile(r"^(\s*)(?:\(void\)\s*)?[A-Za-z_][A-Za-z_0-9]*\(.*\);\s*$")


def blank_comments(text):
    """The text with comments, string and character literals replaced by
    spaces (offsets and newlines kept), so rules never match inside them."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def candidates(src, built, tier):
    """Every mutant of the tier's sources, in a fixed order:
    (relative path, line index, start, end, replacement, rule)."""
    rules = RULES + ([ORDER_RULE] if tier == "tsan" else [])
    cands = []
    for root, dirs, files in os.walk(os.path.join(src, "src")):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith((".c", ".h")) or (f.endswith(".c") and f not in built):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            text = open(path).read()
            code = blank_comments(text).split("\n")
            cont = False
            conds = []  # per open #if: True inside the test builds' branch
            for i, line in enumerate(code):
                directive = cont or line.lstrip().startswith("#")
                cont = directive and line.rstrip().endswith("\\")
                d = line.strip().lstrip("#").strip() if directive else ""
                if d.startswith("if"):
                    conds.append(TEST_ONLY in d and not d.startswith("ifndef"))
                elif d.startswith(("else", "elif")) and conds:
                    conds[-1] = False
                elif d.startswith("endif") and conds:
                    conds.pop()
                # Code that only test builds compile (fault injection) is
                # scaffolding, not the library: no mutants of it.
                if directive or not line.strip() or any(conds):
                    continue
                # An assertion states an invariant the suite runs with: a
                # weaker one changes nothing, a stronger one fails at once.
                if line.lstrip().startswith(TEST_ONLY_CALLS):
                    continue
                for name, pat, rep in rules:
                    for m in re.finditer(pat, line):
                        cands.append((rel, i, m.start(), m.end(), rep, name))
                if CALL.match(line) and not line.lstrip().startswith("return"):
                    cands.append((rel, i, 0, len(line), CALL.match(line).group(1) + ";", "call"))
    return cands


FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z_0-9 *]*?\b([A-Za-z_][A-Za-z_0-9]*)\(")


def function_of(lines, i):
    """The function whose body holds line i: the name on the last line
    before it that starts a definition in column 0 (the project's style)."""
    for j in range(i, -1, -1):
        m = FUNCTION.match(lines[j])
        if m and not lines[j].rstrip().endswith(";"):
            return m.group(1)
    return "-"


def equivalents():
    """(file, function, original line, mutated line) listed in
    tests/MUTANTS.md as "- `file` `function`: `original` -> `mutated`: why"."""
    known = set()
    if os.path.exists(MUTANTS_MD):
        for line in open(MUTANTS_MD):
            m = re.match(r"^- `([^`]+)` `([^`]+)`: `([^`]*)` -> `([^`]*)`", line)
            if m:
                known.add(m.groups())
    return known


def recorded_seed():
    if os.path.exists(MUTANTS_MD):
        m = re.search(r"\bseed (\d+)\b", open(MUTANTS_MD).read())
        if m:
            return int(m.group(1))
    return 1


def project_files():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                             capture_output=True, check=True).stdout.decode()
        return [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, fs in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not d.startswith(("build", ".git"))]
            files += [os.path.relpath(os.path.join(root, f), ROOT) for f in fs]
        return files


class Tree:
    def __init__(self, work, tier, jobs, scale):
        self.src, self.bld = os.path.join(work, "p"), os.path.join(work, "b")
        self.jobs, self.tier = jobs, tier
        self.env = dict(os.environ, MEMPOOL_TEST_SCALE=str(scale), **TIERS[tier][1])
        if not os.path.isdir(self.src):
            for f in project_files():
                if os.path.isfile(os.path.join(ROOT, f)):
                    os.makedirs(os.path.dirname(os.path.join(self.src, f)), exist_ok=True)
                    shutil.copy2(os.path.join(ROOT, f), os.path.join(self.src, f))
        os.makedirs(self.bld, exist_ok=True)

    def sh(self, args, timeout):
        try:
            return subprocess.run(args, cwd=self.bld, env=self.env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return 124

    def configure(self):
        args = ["cmake", "-S", self.src, "-B", self.bld, "-DMEMPOOL_BUILD_TESTS=ON",
                "-DMEMPOOL_BUILD_EXAMPLES=ON", "-DMEMPOOL_BUILD_BENCH=OFF",
                "-DCMAKE_LINK_DEPENDS_NO_SHARED=ON"] + TIERS[self.tier][0]
        if shutil.which("ninja"):
            args += ["-G", "Ninja"]
        return self.sh(args, 600) == 0

    def build(self):
        return self.sh(["cmake", "--build", self.bld, "-j", str(self.jobs)], 900) == 0

    def objects(self):
        digests = {}
        for root, _, files in os.walk(self.bld):
            for f in files:
                if f.endswith(".o"):
                    p = os.path.join(root, f)
                    digests[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
        return digests

    def tests(self):
        out = subprocess.run(["ctest", "-N"], cwd=self.bld, env=self.env, capture_output=True,
                             text=True).stdout
        return re.findall(r"Test\s+#\d+: (\S+)", out)

    def run_one(self, name, timeout):
        return subprocess.Popen(["ctest", "-Q", "-R", f"^{re.escape(name)}$", "--timeout",
                                 str(int(timeout))], cwd=self.bld, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def run(self, order, limits):
        """Runs the tests in order, jobs at a time; the name of the first
        that fails (or None)."""
        pending, running = list(order), {}
        failed = None
        while (pending or running) and not failed:
            while pending and len(running) < self.jobs:
                name = pending.pop(0)
                running[name] = (self.run_one(name, limits[name]), time.monotonic())
            time.sleep(0.01)
            for name, (proc, start) in list(running.items()):
                rc = proc.poll()
                if rc is None and time.monotonic() - start > limits[name]:
                    # A test's own TIMEOUT property outranks ctest's
                    # --timeout: the limit is enforced here.
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc = 124
                if rc is not None:
                    del running[name]
                    if rc != 0:
                        failed = name
                        break
        for proc, _ in running.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        return failed


def prepare(t, tier):
    """Builds and times the unmutated tree: its object digests, the tests in
    the order the mutants run them (fastest first) and their time limits."""
    if not (t.configure() and t.build()):
        sys.exit(f"mutate: the unmutated {tier} tree does not build (in {t.bld})")
    limits, times = {}, {}
    for name in t.tests():
        limits[name] = 600
        t0 = time.monotonic()
        if t.run([name], limits):
            sys.exit(f"mutate: test {name} fails unmutated ({tier} tier)")
        times[name] = time.monotonic() - t0
        limits[name] = max(20.0, 6 * times[name])
    t.base, t.times, t.limits = t.objects(), times, limits
    t.order, t.kills = sorted(times, key=times.get), {}
    print(f"mutate: {tier} tier: {len(times)} tests, {sum(times.values()):.1f} s unmutated",
          flush=True)


def judge(t, rel, i, mutated):
    """One tier's verdict on a mutant: (verdict, killing test, seconds)."""
    path = os.path.join(t.src, rel)
    orig = open(path).read()
    lines = orig.split("\n")
    lines[i] = mutated
    open(path, "w").write("\n".join(lines))
    t0 = time.monotonic()
    try:
        if not t.build():
            return "no-build", "", time.monotonic() - t0
        if t.objects() == t.base:
            return "same-code", "", time.monotonic() - t0
        by = t.run(t.order, t.limits)
        if by:
            # Tests that kill often run first: later mutants are judged
            # sooner (the verdicts do not change).
            t.kills[by] = t.kills.get(by, 0) + 1
            t.order.sort(key=lambda name: (-t.kills.get(name, 0), t.times[name]))
        return ("killed" if by else "SURVIVED"), by, time.monotonic() - t0
    finally:
        open(path, "w").write(orig)
        os.utime(path, (time.time() + 1, time.time() + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tier", default="core",
                    help="judging tiers, comma-separated, in order: " + ",".join(sorted(TIERS)))
    ap.add_argument("--count", type=int, default=15)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", default=None)
    ap.add_argument("--scale", default="0.1")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--verbose", action="store_true", help="also print the time each mutant took")
    ap.add_argument("--keep", default=None, help="scratch directory (kept, and reused)")
    a = ap.parse_args()
    tiers = a.tier.split(",")
    for tier in tiers:
        if tier not in TIERS:
            sys.exit(f"mutate: unknown tier {tier} (tiers: {', '.join(sorted(TIERS))})")
    seed = recorded_seed() if a.seed is None else a.seed
    work = a.keep or tempfile.mkdtemp(prefix="mempool-mutants-")
    os.makedirs(work, exist_ok=True)
    trees = [Tree(os.path.join(work, tier), tier, a.jobs, a.scale) for tier in tiers]
    started = time.monotonic()
    try:
        first = trees[0]
        if not (first.configure() and first.build()):
            sys.exit(f"mutate: the unmutated {tiers[0]} tree does not build (in {first.bld})")
        built = {os.path.basename(p)[:-2] for p in first.objects() if p.endswith(".c.o")}
        cands = candidates(first.src, built, "tsan" if "tsan" in tiers else tiers[0])
        random.Random(seed).shuffle(cands)
        if a.list:
            for rel, i, s, e, rep, rule in cands[:a.count]:
                print(f"{rel}:{i + 1}\t{rule}")
            return 0
        for t, tier in zip(trees, tiers):
            prepare(t, tier)
        print(f"mutate: tiers {','.join(tiers)}, seed {seed}, {len(cands)} candidates", flush=True)
        known = equivalents()
        verdicts = {"killed": 0, "SURVIVED": 0, "equivalent": 0, "same-code": 0, "no-build": 0}
        killed_by = {tier: 0 for tier in tiers}
        unanswered = []
        report = open(a.report, "w") if a.report else None
        for rel, i, s, e, rep, rule in cands:
            if verdicts["killed"] + verdicts["SURVIVED"] + verdicts["equivalent"] >= a.count:
                break
            text = open(os.path.join(first.src, rel)).read().split("\n")
            before, func = text[i], function_of(text, i)
            after = before[:s] + rep + before[e:]
            # Each tier in turn, until one kills it; the same code in every
            # tier is no mutant at all.
            verdict, by, spent, same = "SURVIVED", "", [], 0
            for t, tier in zip(trees, tiers):
                v, test, secs = judge(t, rel, i, after)
                spent.append(f"{tier} {secs:.1f} s")
                if v == "no-build":
                    verdict = v
                    break
                if v == "same-code":
                    same += 1
                elif v == "killed":
                    verdict, by = v, (f"{tier}: {test}" if len(tiers) > 1 else test)
                    killed_by[tier] += 1
                    break
            if verdict == "SURVIVED" and same == len(tiers):
                verdict = "same-code"
            key = (rel, func, before.strip(), after.strip())
            if verdict == "SURVIVED" and key in known:
                verdict = "equivalent"
            verdicts[verdict] += 1
            if verdict == "SURVIVED":
                unanswered.append(key)
            line = f"{verdict}\t{rel}:{i + 1}\t{func}\t{rule}\t`{before.strip()}` -> `{after.strip()}`"
            if by:
                line += f"\t({by})"
            if a.verbose:
                line += f"\t[{', '.join(spent)}]"
            print(line, flush=True)
            if report:
                report.write(f"{verdict}\t{rel}:{i + 1}\t{func}\t{rule}\t{by}\t{before.strip()}\t{after.strip()}\n")
        for t in trees:
            t.build()  # leave the trees unmutated for a rerun with --keep
        # Equivalent mutants are the same program: the score leaves them out.
        judged = verdicts["killed"] + verdicts["SURVIVED"]
        score = 100.0 * verdicts["killed"] / max(judged, 1)
        by_tier = ", ".join(f"{n} by {tier}" for tier, n in killed_by.items()) if len(tiers) > 1 else ""
        print(f"mutation score ({','.join(tiers)}, seed {seed}): {verdicts['killed']}/{judged} killed "
              f"({score:.1f}%{'; ' + by_tier if by_tier else ''}), {verdicts['equivalent']} "
              f"equivalent (tests/MUTANTS.md), {verdicts['SURVIVED']} survived unanswered; "
              f"not judged: {verdicts['same-code']} same code, {verdicts['no-build']} did not "
              f"build; {time.monotonic() - started:.0f} s")
        if a.check and unanswered:
            for u in unanswered:
                print("unanswered survivor: - `%s` `%s`: `%s` -> `%s`" % u)
            return 1
        return 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
