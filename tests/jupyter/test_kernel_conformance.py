"""jupyter_kernel_test against the kiln kernel, with every sample field filled in.

The kernelspec `kiln` must be installed in the environment running pytest
(`cargo xtask test` does that).
"""

import os
import pathlib
import unittest

import jupyter_kernel_test as jkt

SDK = pathlib.Path(__file__).resolve().parents[2] / "server-client" / "client"
DEP = f':dep kiln = {{ path = "{SDK}" }}\nuse kiln::prelude::*;'
# The first compile of a cell that uses the SDK is slower than JKT's 15 s budget.
WARMUP_TIMEOUT = 600


class KilnKernelTests(jkt.KernelTests):
    kernel_name = "kiln"
    language_name = "rust"
    file_extension = ".rs"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reply = cls.kc.execute_interactive(DEP, timeout=WARMUP_TIMEOUT)
        assert reply["content"]["status"] == "ok", reply["content"]

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("this goes to stderr");'

    completion_samples = [
        {"text": "std::collections::HashM", "matches": {"HashMap"}},
        {"text": "let v: Vec<u8> = Vec::with_capaci", "matches": {"with_capacity"}},
    ]
    complete_code_samples = ["1", "fn main() {}", 'println!("hi");', ":dep regex"]
    incomplete_code_samples = ["fn foo(", "let x = {", 'let s = "open']
    invalid_code_samples = ["let = ;", "let x = (1];"]

    code_page_something = "?std::vec::Vec"
    code_generate_error = 'let s: String = 5;'
    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": '"kiln".len()', "result": "4"},
        {"code": 'vec![1, 2]', "result": "[1, 2]"},
    ]
    code_display_data = [
        {"code": 'show(MimeBundle::html("<b>bold</b>", "bold"));', "mime": "text/html"},
        {"code": 'show("plain");', "mime": "text/plain"},
    ]
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "std::vec::Vec"
    code_clear_output = 'clear_output(true);\nshow("after clearing");'


class KilnIopubWelcomeTests(jkt.IopubWelcomeTests):
    kernel_name = "kiln"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
