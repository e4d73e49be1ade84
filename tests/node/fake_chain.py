"""Stand-ins for the blocks and the chain that ``ChainSync``'s rules on a pulled batch read (heights, hashes,
parent links, what we hold and what we dropped), for tests of those rules alone."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeHeader:
    parent: bytes


@dataclass
class FakeBlock:
    height: int
    hash: bytes
    header: FakeHeader


def branch(tag: bytes, parent: bytes, start: int, end: int) -> list[FakeBlock]:
    """Blocks ``start`` … ``end`` linked by parent hash from ``parent``; ``tag`` tells branches apart."""
    out = []
    for h in range(start, end + 1):
        block = FakeBlock(h, tag + bytes([h]) * 31, FakeHeader(parent))
        out.append(block)
        parent = block.hash
    return out


@dataclass
class FakeChain:
    """The blocks we hold, our finalized height, and the heights we rewound to."""

    blocks: list[FakeBlock]
    finalized_height: int = 0
    rewound_to: list[int] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.blocks[-1].height if self.blocks else 0

    def block(self, height: int) -> FakeBlock | None:
        return next((b for b in self.blocks if b.height == height), None)

    def rewind(self, height: int) -> int:
        self.rewound_to.append(height)
        removed = [b for b in self.blocks if b.height > height]
        self.blocks = [b for b in self.blocks if b.height <= height]
        return len(removed)
