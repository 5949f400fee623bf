"""A prepared var folder for the benchmarks: Django in this process, files of the sizes wanted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PillowImage

from harness.stack import django_environment, prepare, seed


@dataclass
class BenchData:
    var_dir: Path
    env: dict[str, str]
    token: str
    images: dict[str, int]  # label -> image id
    names: dict[str, str]  # label -> storage name


def bmp_of_size(path: Path, size_bytes: int) -> None:
    """A valid BMP of about ``size_bytes``: a header and raw pixels (cheap to make, any size)."""
    side = max(8, int((size_bytes / 3) ** 0.5) // 4 * 4)
    PillowImage.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path, format="BMP")


def prepare_bench(var_dir: Path, sizes: dict[str, int]) -> BenchData:
    """Migrate, set Django up in this process, and create one image per size for a bench user."""
    prepare(var_dir)
    env = django_environment(var_dir)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from app.downloads.models import Image

    token = seed(env, "--no-images", "--username", "bench")["token"]
    owner = get_user_model().objects.get(username="bench")
    folder = var_dir / "media" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    images, names = {}, {}
    for label, size in sizes.items():
        name = f"bench/{label}.bmp"
        bmp_of_size(var_dir / "media" / name, size)
        image = Image.objects.create(owner=owner, file=name, original_name=f"{label}.bmp", content_type="image/bmp",
                                     size=(var_dir / "media" / name).stat().st_size)
        images[label], names[label] = image.pk, name
    return BenchData(var_dir, env, token, images, names)
