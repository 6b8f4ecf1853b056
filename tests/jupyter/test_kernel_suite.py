"""The jupyter_kernel_test conformance suite against the `wand` kernel (scratch cells)."""
import unittest

import jupyter_kernel_test as jkt


class WandKernelTests(jkt.KernelTests):
    kernel_name = "wand"
    language_name = "wand"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"
    code_execute_result = [{"code": "6 * 7", "result": "42"}, {"code": "'wand'", "result": "'wand'"}]
    code_generate_error = "raise ValueError('boom')"
    code_display_data = [
        {"code": "display(6 * 7)", "mime": "text/plain"},
        {"code": "import pandas as pd\ndisplay(pd.DataFrame({'a': [1, 2]}))", "mime": "text/html"},
    ]
    code_clear_output = "clear_output()"
    code_page_something = "zip?"
    completion_samples = [{"text": "zi", "matches": {"zip"}}, {"text": "%sta", "matches": {"%status"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n    return x * 2\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):", "f(1,"]
    invalid_code_samples = [")"]
    code_inspect_sample = "zip"
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "6*"


if __name__ == "__main__":
    unittest.main()
