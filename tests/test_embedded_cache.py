"""The embedded model's one-time conversion, when two processes start on a fresh machine at once."""

import json
import threading
import time

from rlprompt_interp.models import embedded


def test_two_first_loads_at_once_convert_once(tmp_path, monkeypatch):
    # the second caller must wait for the first's conversion and then use it, not convert again and swap the
    # folder under the first one's load (what two runs started together on a fresh machine did)
    calls = []

    def slow_convert(folder, gguf_file, target, stamp):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)
        target.mkdir(parents=True, exist_ok=True)
        (target / "converted-from.json").write_text(json.dumps(stamp))

    monkeypatch.setattr(embedded, "_convert_gguf", slow_convert)
    target, stamp = tmp_path / "model", {"gguf": "m.gguf", "size": 1, "version": "1"}
    threads = [threading.Thread(target=embedded.convert_once, args=(tmp_path, "m.gguf", target, stamp), name=str(i))
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    embedded.convert_once(tmp_path, "m.gguf", target, stamp)
    assert len(calls) == 1
    embedded.convert_once(tmp_path, "m.gguf", target, {**stamp, "version": "2"})  # a new package: converted anew
    assert len(calls) == 2
