"""Fashion-MNIST: Zalando's clothing images in MNIST's four-IDX-file layout (loaded by :mod:`.idxsets`).

A module of its own so that registration order, which is listing order, stays MNIST, COIL20, DIGITS,
FASHION-MNIST, USPS.
"""
from __future__ import annotations

from .idxsets import Checksum, make_loader, make_locator
from .kinds import register_dataset

# Only md5s are published (Fashion-MNIST README); no sha256 is known, so md5 is what gets checked.
FASHION_FILES: dict[str, Checksum] = {
    "train-images-idx3-ubyte.gz": Checksum(md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte.gz": Checksum(md5="25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte.gz": Checksum(md5="bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte.gz": Checksum(md5="bb300cfdad3c16e7a12a480ee83cd310"),
}
FASHION_MIRRORS: list[str] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

register_dataset(
    "FASHION-MNIST", dirname="fashion-mnist", shape=(1, 28, 28), class_names=FASHION_CLASSES,
    sizes={"all": 70000, "train": 60000, "test": 10000}, downloadable=True,
    description="Zalando clothing images, train then test", locate=make_locator("fashion-mnist"),
    aliases=("FMNIST",),
)(make_loader("FASHION-MNIST", "fashion-mnist", FASHION_FILES, FASHION_MIRRORS, FASHION_CLASSES))
