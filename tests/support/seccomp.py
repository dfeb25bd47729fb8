"""Exec a program under a seccomp filter built with libseccomp, as systemd applies its sandbox directives.

Used to reproduce `MemoryDenyWriteExecute=` and `RestrictAddressFamilies=` without systemd as PID 1.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import NoReturn

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ = 4, 6, 7


def fail_with(errno_value: int) -> int:
    """The libseccomp action that makes a matching call fail with `errno_value`."""
    return 0x00050000 | errno_value


class ArgCompare(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def exec_under_filter(rules: Sequence[tuple[str, int, ArgCompare]], argv: Sequence[str]) -> NoReturn:
    """Allow everything but `rules` (syscall name, action, one argument comparison), then exec `argv`."""
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCompare),
    ]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(SCMP_ACT_ALLOW)
    for name, action, compare in rules:
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if seccomp.seccomp_rule_add_array(context, action, number, 1, ctypes.byref(compare)) != 0:
            raise OSError(f"seccomp rule for {name} refused")
    if seccomp.seccomp_load(context) != 0:  # libseccomp sets no_new_privs first, as NoNewPrivileges= would
        raise OSError("seccomp_load failed")
    os.execv(argv[0], list(argv))  # noqa: S606 — exec, as systemd does, with the filter in place
