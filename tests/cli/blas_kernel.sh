#!/usr/bin/env bash
# labels: mpi
# blas_kernel.sh: the guard against OpenBLAS kernels slower than the CPU
# (common/mms_blas.c). Under mpirun at 2 ranks, a run started on the Prescott
# kernels with MMS_BLAS_FIX=force re-executes itself on the CPU's family, says
# so in one log line, and writes the same graph, byte for byte, as a run
# started on that family directly; OPENBLAS_CORETYPE without force and
# MMS_BLAS_FIX=0 are kept as given. Skipped (77) on a CPU without AVX2.
set -u
: "${MMSAGE:?set MMSAGE to the mmsage binary}"
# shellcheck source=tests/cli/lib/expect.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib/expect.bash"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! grep -qw avx2 /proc/cpuinfo; then echo "skipped: this CPU has no AVX2, nothing to correct"; exit 77; fi
best=Haswell
grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo &&
    grep -qw avx512cd /proc/cpuinfo && best=SkylakeX
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
step synth "$MMSAGE" synth --images 3000 --dim 64 --seed 3 --out "$T/C"
fails=0
expect() { # NAME PATTERN
    if grep -qF -- "$2" "$T/log"; then echo "ok:   $1"; else echo "FAIL: $1: no '$2' in:"; sed 's/^/    /' "$T/log"; fails=$((fails + 1)); fi
}
OPENBLAS_CORETYPE=$best step direct "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G-direct"
expect "a user's OPENBLAS_CORETYPE is named" "BLAS core $best (OPENBLAS_CORETYPE=$best)"
MMS_BLAS_FIX=force OPENBLAS_CORETYPE=Prescott step corrected "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G-fixed"
expect "Prescott is corrected" "BLAS core $best (corrected from Prescott"
for f in indices.npy weights.npy x.npy; do
    if cmp -s "$T/G-direct/$f" "$T/G-fixed/$f"; then echo "ok:   $f identical to a $best run"; else echo "FAIL: $f differs from a $best run"; fails=$((fails + 1)); fi
done
OPENBLAS_CORETYPE=Prescott step kept "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G-kept"
expect "without force, the user's choice stands" "BLAS core Prescott (OPENBLAS_CORETYPE=Prescott)"
MMS_BLAS_FIX=0 OPENBLAS_CORETYPE=Prescott step off "${MPIRUN[@]}" "$MMSAGE" build --catalog "$T/C" --out "$T/G-off"
expect "MMS_BLAS_FIX=0 changes nothing" "BLAS core Prescott"
echo "blas_kernel: $fails failures"
[ "$fails" -eq 0 ]
