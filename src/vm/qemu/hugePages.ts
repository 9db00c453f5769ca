/**
 * QEMU asks for transparent huge pages on every RAM block it allocates
 * (madvise). When a VM's guest RAM is a file (a clone of a template, a
 * workspace's RAM file), what stays anonymous are small blocks such as the
 * ACPI tables', each then backed by a 2 MiB page for a few KiB it uses:
 * measured, 2.1 MB of PSS per idle VM (bench/density, 21.2 → 19.1 MB).
 * `prctl(PR_SET_THP_DISABLE)`, which survives exec, turns huge pages off for
 * that QEMU alone. Perl's `syscall` reaches prctl without a compiled helper
 * (perl-base is Essential on Debian). The syscall number is the host's: only an
 * x86-64 host gets the wrapper. A prctl the host refuses (seccomp) costs only the
 * memory: QEMU starts anyway. A VM whose RAM is anonymous (a cold boot) keeps them.
 */
import { tool } from "../../host/systemTools.js"

const SYS_PRCTL_X86_64 = 157
const PR_SET_THP_DISABLE = 41

const SCRIPT = `syscall(${SYS_PRCTL_X86_64}, ${PR_SET_THP_DISABLE}, 1, 0, 0, 0); ` +
  `exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"`

/** `argv`, run with transparent huge pages off. */
export const withoutHugePages = (argv: ReadonlyArray<string>): ReadonlyArray<string> =>
  process.arch === "x64" ? [tool("perl"), "-e", SCRIPT, "--", ...argv] : argv
