"""Save one image or animated GIF that a run logged to TensorBoard as a file (how the README's rollout GIF is made).

    python tools/tb_image.py RUN/tb episode_000/video docs/img/rollout.gif [--step N]

The last logged value of the tag is written (or the one at ``--step``), in the format it was logged in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worldmodel.io.tb import read_event_images, read_event_tags  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("tag")
    parser.add_argument("out", type=Path)
    parser.add_argument("--step", type=int, default=None)
    args = parser.parse_args(argv)
    images = read_event_images(args.log_dir, args.tag) if args.tag in read_event_tags(args.log_dir)["images"] else []
    chosen = [data for step, data in images if args.step is None or step == args.step]
    if not chosen:
        print(f"error: no image {args.tag!r} (step {args.step}) in {args.log_dir}; its image tags: "
              f"{', '.join(read_event_tags(args.log_dir)['images']) or 'none'}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(chosen[-1])
    print(f"wrote {args.out} ({len(chosen[-1]) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
