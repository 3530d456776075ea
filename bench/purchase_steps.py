"""Instructions per step of a purchase, under callgrind: where the checkout's CPU goes, without a server's noise.

    .venv/bin/python bench/purchase_steps.py [--purchases 6] [--web-only]

Runs bench/purchase_loop.py's purchase (product page, add to cart, details, review, place, the gateway's page,
pay, return, notification) under valgrind's callgrind, which dumps its counters at every step's start and end
(--dump-before on os.getppid, which the loop calls there), and prints millions of instructions per purchase for
each step. Instruction counts are the same from run to run whatever else the machine does, so two versions are
compared by running this in each tree (against a database of its own: BENCH_DATABASE_URL). Three purchases warm
up first; the garbage collector's objects are frozen after them, so that a full collection does not land in one
step of one version and not the other. Without --web-only the workers' handlers run in-process inside the step
that triggers them (the return page, mostly) and the page cache is off; with it, see bench/purchase_loop.py.
A run of 6 purchases takes a few minutes.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

STEPS = (("/p/", "product"), ("/cart/add", "add to cart"), ("/checkout/review", "review"),
         ("/checkout/place", "place"), ("/checkout/return", "return"), ("/checkout/", "details"),
         ("/payments/notify", "notification"), ("/payments/test", "gateway"))  # fmt: skip


def step_name(method: str, path: str) -> str:
    path = path.split("?")[0].removeprefix("http://testserver")
    return method + " " + next((name for prefix, name in STEPS if path.startswith(prefix)), path)


def child(purchases: int, out: str) -> None:
    """Inside valgrind: the purchases, with os.getppid() (a dump) around each request."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gc

    import purchase_loop as loop
    from django.test import Client

    order: list[str] = []
    measuring = [False]

    def timed(original, method):
        def request(self, path, *args, **kwargs):
            if measuring[0]:
                os.getppid()
                order.append("between requests")
            response = original(self, path, *args, **kwargs)
            if measuring[0]:
                os.getppid()
                order.append(step_name(method, path))
            return response

        return request

    Client.get, Client.post = timed(Client.get, "GET"), timed(Client.post, "POST")
    variant_id, slug = loop.setup()
    with loop.page_cache():
        for _ in range(3):
            loop.purchase(variant_id, slug)
        gc.collect()
        gc.freeze()
        os.getppid()
        order.append("warm-up")
        measuring[0] = True
        for _ in range(purchases):
            loop.purchase(variant_id, slug)
        measuring[0] = False
        os.getppid()
        order.append("between requests")
    with open(out, "w") as handle:
        json.dump(order, handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purchases", type=int, default=6)
    parser.add_argument("--web-only", action="store_true", help="the web server's part only (BENCH_WEB_ONLY)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.purchases, args.child)
        return
    directory = tempfile.mkdtemp(prefix="purchase-steps-")
    order_file = os.path.join(directory, "order.json")
    env = dict(os.environ, BENCH_WEB_ONLY="1" if args.web_only else "0")
    command = ["valgrind", "--tool=callgrind", "--dump-before=os_getppid",
               f"--callgrind-out-file={directory}/cg.%p", sys.executable, os.path.abspath(__file__),
               "--purchases", str(args.purchases), "--child", order_file]  # fmt: skip
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dumps = sorted((f for f in glob.glob(f"{directory}/cg.*.*") if f.rsplit(".", 1)[1].isdigit()),
                   key=lambda f: int(f.rsplit(".", 1)[1]))  # fmt: skip
    costs = []
    for dump in dumps:
        with open(dump) as handle:
            costs.append(next(int(line.split()[1]) for line in handle if line.startswith(("summary:", "totals:"))))
    with open(order_file) as handle:
        order = json.load(handle)
    per_step: Counter[str] = Counter()
    for name, cost in zip(order, costs, strict=False):  # dump k ends where the k-th os.getppid() was called
        if name != "warm-up":
            per_step[name] += cost
    mode = "web server only" if args.web_only else "web and workers in-process"
    print(f"millions of instructions per purchase ({mode}, {args.purchases} purchases, callgrind)")
    for name, cost in per_step.most_common():
        print(f"  {name:<24}{cost / args.purchases / 1e6:8.1f}")
    print(f"  {'all':<24}{sum(per_step.values()) / args.purchases / 1e6:8.1f}")


if __name__ == "__main__":
    main()
