"""The patch tree of MultiScaleDataset (docs/spec.md §5 ``multiscale``), as DLAS's
progressive-zoom trainer code walks it.

An item of MultiScaleDataset is a list of patches: the whole image, then at each depth
the four quadrants of the current patch (top-left, top-right, bottom-left,
bottom-right) listed together, then each of them recursed into in that order.
:func:`build_multiscale_patch_index_map` gives the leaves of that tree, each linked to
its parent up to the root, with the patch's index in the list: a model trained on DLAS
indices sees the same patch at the same index.
"""

from __future__ import annotations

# A node's offset within its parent, by quadrant number (0..3 in the order above).
_LEFTS = (0, 0.5, 0, 0.5)
_TOPS = (0, 0, 0.5, 0.5)


class MultiscaleTreeNode:
    """One patch of the tree: ``index`` into the item's patch list, ``parent`` (None
    for the root), ``children``, and ``left`` / ``top``, the node's offset within its
    parent as a fraction of the parent's side (0 or 0.5; 0 for the root)."""

    def __init__(self, index: int, parent: MultiscaleTreeNode | None, quadrant: int) -> None:
        self.index = index
        self.parent = parent
        self.children: list[MultiscaleTreeNode] = []
        self.left = _LEFTS[quadrant]
        self.top = _TOPS[quadrant]

    def add_child(self, child: MultiscaleTreeNode) -> MultiscaleTreeNode:
        """Appends `child` to :attr:`children` and returns it."""
        self.children.append(child)
        return child

    def __repr__(self) -> str:
        return f"MultiscaleTreeNode(index={self.index}, left={self.left}, top={self.top})"


def build_multiscale_patch_index_map(depth: int) -> list[MultiscaleTreeNode]:
    """The leaves of the patch tree of ``depth`` levels (a dataset's ``num_scales``),
    in patch order.

    ``depth`` 1 is the root alone (DLAS recurses forever there) and 0 has no patch;
    a negative depth is an error.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    if depth == 0:
        return []
    root = MultiscaleTreeNode(0, None, 0)
    if depth == 1:
        return [root]
    leaves: list[MultiscaleTreeNode] = []
    _build(root, depth - 1, 1, leaves)
    return leaves


def _build(node: MultiscaleTreeNode, levels: int, index: int, leaves: list) -> int:
    """Adds `levels` levels below `node`, its children numbered from `index`; returns
    the next free index."""
    children = [node.add_child(MultiscaleTreeNode(index + q, node, q)) for q in range(4)]
    index += 4
    if levels == 1:
        leaves.extend(children)
        return index
    for child in children:
        index = _build(child, levels - 1, index, leaves)
    return index
