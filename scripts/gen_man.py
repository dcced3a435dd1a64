#!/usr/bin/env python3
"""gen_man.py: the man page (mmsage.1) and the bash completion (mmsage.bash)
of mmsage, generated at build time from the binary's own help, which
mms_opts prints from each command's option table (common/mms_opts.c), so the
page and the completion can never disagree with the options the binary takes.

    python3 scripts/gen_man.py BINARY OUTDIR

Runs `BINARY --help`, `BINARY --version`, `BINARY help exit-codes` and
`BINARY <command> --help` for every command (and `import <format> --help`),
without MPI (a command's --help never initialises it). Written by hand: no
maintained tool turns mms_opts' help into roff and bash completion (help2man
would need a Perl dependency and still knows nothing of our subcommands)."""
import datetime
import os
import re
import subprocess
import sys


def run(binary, *args):
    env = dict(os.environ, MMS_LOG="error")
    r = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=60)
    if r.returncode != 0:
        sys.exit(f"gen_man.py: '{binary} {' '.join(args)}' exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def parse_usage(text):
    """(usage line, description paragraphs, [(option, argument, help)])."""
    lines = text.splitlines()
    usage = lines[0][len("usage: "):] if lines and lines[0].startswith("usage: ") else ""
    desc, opts, i = [], [], 1
    while i < len(lines) and lines[i].strip() != "options:":
        desc.append(lines[i])
        i += 1
    i += 1
    while i < len(lines):
        m = re.match(r"^  --([A-Za-z0-9-]+)(?: (\S+))?$", lines[i])
        if m:
            helps = []
            i += 1
            while i < len(lines) and lines[i].startswith("      "):
                helps.append(lines[i].strip())
                i += 1
            opts.append((m.group(1), m.group(2) or "", " ".join(helps)))
        else:
            i += 1
    return usage, "\n".join(desc).strip(), opts


def roff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l if l[:1] in (".", "'") else l) for l in s.splitlines())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_man.py BINARY OUTDIR")
    binary, outdir = sys.argv[1], sys.argv[2]
    top = run(binary, "--help")
    version = run(binary, "--version").strip()
    codes = run(binary, "help", "exit-codes")
    commands = re.findall(r"^  ([a-z]+) +(.+?)( \[MPI\])?$", top.split("commands:")[1].split("other:")[0], re.M)
    sections = []  # (title, usage, description, options)
    for name, summary, mpi in commands:
        text = run(binary, name, "--help")
        if name == "import":  # a command of formats, each with its own options
            formats = re.findall(r"^  ([a-z]+) +(.+)$", text.split("formats:")[1], re.M)
            for fmt, _ in formats:
                u, d, o = parse_usage(run(binary, "import", fmt, "--help"))
                sections.append((f"import {fmt}", u, d, o))
            continue
        u, d, o = parse_usage(text)
        if mpi:
            d += "\nRun under mpirun (collective)."
        sections.append((name, u, d, o))

    date = datetime.date.today().isoformat()
    if os.environ.get("SOURCE_DATE_EPOCH"):
        date = datetime.datetime.utcfromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"])).date().isoformat()
    page = [f'.TH MMSAGE 1 "{date}" "{roff(version)}" "User Commands"',
            ".SH NAME", "mmsage \\- multi\\-modal image retrieval with GraphSAGE, sharded over MPI",
            ".SH SYNOPSIS", ".B mmsage", ".I command", "[options]", ".br",
            ".B mpirun \\-np", ".I P", ".B mmsage", ".I command", "[options]",
            ".SH DESCRIPTION",
            roff("One graph holds image nodes (visual features) and tag nodes; unsupervised "
                 "GraphSAGE embeds both in one space; a new image is embedded inductively "
                 "through its nearest images, its tags or both, and a slider fuses visual and "
                 "conceptual intent. The commands below run the pipeline: catalog, graph, "
                 "partition, model, index, then serve, search or evaluate."),
            ".SH COMMANDS"]
    for title, usage, desc, opts in sections:
        page += [f'.SS "{roff(title)}"', ".B " + roff(usage), ".PP", roff(desc)]
        for name, arg, help_ in opts:
            head = f"\\fB\\-\\-{roff(name)}\\fR" + (f" \\fI{roff(arg)}\\fR" if arg else "")
            page += [".TP", head, roff(help_)]
    page += [".SH EXIT STATUS", ".nf", roff(codes.strip()), ".fi",
             ".SH ENVIRONMENT",
             ".TP", "\\fBMMS_LOG\\fR", roff("debug, info (default), warn, error or quiet (errors only); any other value is refused."),
             ".TP", "\\fBMMS_BLAS_THREADS\\fR", roff("OpenBLAS threads per rank (default 1)."),
             ".TP", "\\fBMMS_BLAS_FIX\\fR", roff("0 keeps the BLAS kernel OpenBLAS picked; force re-executes with the CPU's own (docs/benchmarks.md)."),
             ".TP", "\\fBMMS_AUTH_TOKEN_FILE\\fR", roff("the query server's shared-secret token, for query and web."),
             ".SH SEE ALSO", roff("README.md and docs/ in the source tree: formats, protocol, "
                                  "query, SLURM jobs, reliability, benchmarks.")]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "mmsage.1.tmp"), "w") as f:
        f.write("\n".join(page) + "\n")
    os.replace(os.path.join(outdir, "mmsage.1.tmp"), os.path.join(outdir, "mmsage.1"))

    # bash completion: commands, then each command's options; files after an
    # option that takes a value
    cases, valued = [], set()
    for title, _, _, opts in sections:
        words = " ".join("--" + n for n, _, _ in opts)
        valued |= {"--" + n for n, a, _ in opts if a}
        if title.startswith("import "):
            cases.append(f'        "import {title.split()[1]}") opts="{words}" ;;')
        else:
            cases.append(f'        "{title}") opts="{words}" ;;')
    formats = " ".join(t.split()[1] for t, *_ in sections if t.startswith("import "))
    names = " ".join(n for n, _, _ in commands)
    comp = f"""# bash completion for mmsage, generated by scripts/gen_man.py from `mmsage --help`
# (source it, or install it as share/bash-completion/completions/mmsage)
_mmsage() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} cmd opts
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{names} help --help --version" -- "$cur"))
        return
    fi
    cmd=${{COMP_WORDS[1]}}
    if [ "$cmd" = import ]; then
        if [ "$COMP_CWORD" -eq 2 ]; then
            COMPREPLY=($(compgen -W "{formats}" -- "$cur"))
            return
        fi
        cmd="import ${{COMP_WORDS[2]}}"
    fi
    if [ "$cmd" = help ]; then
        COMPREPLY=($(compgen -W "exit-codes" -- "$cur"))
        return
    fi
    case " {' '.join(sorted(valued))} " in
        *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case "$cmd" in
{chr(10).join(cases)}
        *) opts="" ;;
    esac
    COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
}}
complete -o filenames -o bashdefault -F _mmsage mmsage
"""
    with open(os.path.join(outdir, "mmsage.bash.tmp"), "w") as f:
        f.write(comp)
    os.replace(os.path.join(outdir, "mmsage.bash.tmp"), os.path.join(outdir, "mmsage.bash"))


if __name__ == "__main__":
    main()
