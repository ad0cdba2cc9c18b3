"""IVF inverted lists on disk: FAISS ``OnDiskInvertedLists`` in a ``.ivfdata`` file beside the index.

For indexes larger than the memory budget (the FAISS wiki, "Indexes that do not fit in RAM",
and ``faiss/contrib/ondisk.py``): the trained IVF index is filled part by part, each part is
written as an ordinary index file, and the parts' lists are merged into one compact file that
queries memory-map. RAM then holds the coarse centroids, PQ codebooks and the list directory
(24 bytes per list); the lists themselves are paged in by the kernel as queries visit them.

The ``.ivfdata`` file is named after its index file (``blocks-ivf-pq-....faiss`` ->
``blocks-ivf-pq-....ivfdata``), so it travels with it; the path FAISS records inside the index
file is ignored on load. Mapped lists are never changed in place: an add or remove writes the
changed lists to a scratch file (``rewrite_lists``), which ``save`` renames beside the new index
file, so the file a manifest names stays intact until the manifest names another.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from singerid.errors import ArtefactError, ParameterError
from singerid.index.home import IVFDATA_SUFFIX

log = logging.getLogger(__name__)

PREFETCH_THREADS = 4  # ours: FAISS's default 32 page-in threads per search call swamp 2 cores
_SCRATCH_NUMBERS = itertools.count()


def data_path_for(index_path: Path) -> Path:
    """The ``.ivfdata`` file that belongs to ``index_path``."""
    return Path(index_path).with_suffix(IVFDATA_SUFFIX)


def is_on_disk(index: faiss.Index) -> bool:
    """Whether ``index`` is an IVF index whose inverted lists are an OnDiskInvertedLists."""
    ivf = _ivf_or_none(index)
    return ivf is not None and isinstance(faiss.downcast_InvertedLists(ivf.invlists), faiss.OnDiskInvertedLists)


def mapped_file(index: faiss.Index) -> Path:
    """The ``.ivfdata`` file the on-disk lists of ``index`` are mapped from."""
    return Path(_ondisk_lists(index).filename)


def merge_parts(trained: faiss.IndexIVF, part_paths: Sequence[Path], data_path: Path) -> None:
    """Merge the lists of the index files ``part_paths`` into ``data_path`` and hang them on ``trained``.

    ``trained``: the empty trained IVF index every part was cloned from. The parts are read
    memory-mapped (IO_FLAG_MMAP), so neither they nor the result need to fit in RAM. The result is
    compact (each list exactly its size) and flushed to disk. Follows faiss.contrib.ondisk.merge_ondisk.
    """
    if trained.ntotal != 0:
        raise ParameterError(f"merge_parts needs an empty trained index, this one holds {trained.ntotal}")
    parts = [faiss.read_index(str(p), faiss.IO_FLAG_MMAP) for p in part_paths]
    pointers = faiss.InvertedListsPtrVector()
    for part in parts:
        pointers.push_back(faiss.extract_index_ivf(part).invlists)
    lists = faiss.OnDiskInvertedLists(trained.nlist, trained.code_size, str(data_path))
    with quiet_c_stdout():  # OnDiskInvertedLists printf()s "resizing <file> to <n> bytes" to stdout
        ntotal = lists.merge_from_multiple(pointers.data(), pointers.size(), False)
    del pointers, parts
    lists.read_only = True  # changes go through rewrite_lists, never FAISS's in-place allocator
    lists.prefetch_nthread = PREFETCH_THREADS
    _hang(trained, lists)
    trained.ntotal = ntotal
    _fsync(data_path)


def open_lists(index: faiss.Index, data_path: Path, *, source: Path) -> None:
    """Map ``data_path`` read-only as the lists of ``index`` (read with IO_FLAG_SKIP_IVF_DATA from ``source``).

    Raises ArtefactError when the file is missing or shorter than the index says.
    """
    lists = _ondisk_lists(index)
    if not data_path.is_file():
        raise ArtefactError(f"the inverted lists {data_path} of index {source} are missing")
    if data_path.stat().st_size < lists.totsize:
        raise ArtefactError(f"the inverted lists {data_path} have {data_path.stat().st_size:,} bytes, index {source} "
                            f"needs {lists.totsize:,}: the file is truncated")
    lists.filename = str(data_path)
    lists.read_only = True
    lists.prefetch_nthread = PREFETCH_THREADS
    if lists.totsize:
        lists.do_mmap()


def rewrite_lists(index: faiss.Index, data_path: Path, *, drop: np.ndarray | None = None,
                  extra: faiss.InvertedLists | None = None) -> int:
    """Write the on-disk lists of ``index``, less the ids in ``drop``, plus ``extra``'s entries, compactly
    to ``data_path``, and switch ``index`` to the new file (read-only); returns the new vector count.

    Every change to on-disk lists goes through here instead of FAISS's in-place add/remove:
    OnDiskInvertedLists frees a list's slot before copying the list into a new one and can hand
    out overlapping space (our tests lost entries after an add). Reads the old file list by list;
    one list at a time is in RAM.
    """
    ivf = faiss.extract_index_ivf(index)
    old, code_size = _ondisk_lists(index), ivf.code_size
    drop = None if drop is None or len(drop) == 0 else np.unique(np.asarray(drop, dtype=np.int64))

    def entries(list_no: int) -> tuple[np.ndarray, np.ndarray]:  # int64 (m,), uint8 (m, code_size)
        ids, codes = _list_arrays(old, list_no, code_size)
        if drop is not None and len(ids):
            keep = ~np.isin(ids, drop)
            ids, codes = ids[keep], codes[keep]
        if extra is not None and extra.list_size(list_no):
            more_ids, more_codes = _list_arrays(extra, list_no, code_size)
            ids, codes = np.concatenate([ids, more_ids]), np.concatenate([codes, more_codes])
        return ids, codes

    def size(list_no: int) -> int:
        count = old.list_size(list_no)
        if drop is not None and count:
            pointer = old.get_ids(list_no)
            count -= int(np.isin(faiss.rev_swig_ptr(pointer, count), drop).sum())
            old.release_ids(list_no, pointer)
        return count + (extra.list_size(list_no) if extra is not None else 0)

    sizes = np.array([size(j) for j in range(ivf.nlist)], dtype=np.uint64)
    total = max(1, int(sizes.sum()) * (code_size + 8))  # FAISS cannot map an empty file: one spare byte
    new = faiss.OnDiskInvertedLists(ivf.nlist, code_size, str(data_path))
    with quiet_c_stdout():
        new.update_totsize(total)  # creates and maps the file, with one free slot covering it ...
    new.allocate_slot(total)  # ... which we claim, so FAISS's allocator never hands out live space
    new.set_all_lists_sizes(faiss.swig_ptr(sizes))  # lists back to back in list order
    for list_no in np.flatnonzero(sizes):
        ids, codes = entries(int(list_no))
        new.update_entries(int(list_no), 0, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    new.read_only = True
    new.prefetch_nthread = PREFETCH_THREADS
    _hang(ivf, new)
    ivf.ntotal = int(sizes.sum())
    _fsync(data_path)
    return int(ivf.ntotal)


def encode_lists(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> faiss.ArrayInvertedLists:
    """The entries ``index`` would add for ``vectors`` float32 (n, d) under ``ids`` int64 (n,), as RAM lists.

    The on-disk lists are swapped for empty in-RAM ones during the add and swapped back after,
    so ``index`` itself is unchanged.
    """
    ivf = faiss.extract_index_ivf(index)
    disk, owned, before = ivf.invlists, ivf.own_invlists, ivf.ntotal
    fresh = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)  # Python owns it
    ivf.own_invlists = False  # replace_invlists must not free the on-disk lists
    ivf.replace_invlists(fresh, False)
    try:
        ivf.add_with_ids(vectors, ids)
    finally:
        ivf.replace_invlists(disk, owned)
        ivf.ntotal = before
    return fresh


def scratch_path(index_dir: Path) -> Path:
    """A fresh name for rewritten lists; it holds ``.tmp-`` so that ``Home.prune_index_files``
    removes it if a crash leaves it behind."""
    return Path(index_dir) / f".lists-{os.getpid()}-{next(_SCRATCH_NUMBERS)}{IVFDATA_SUFFIX}.tmp-{os.getpid()}"


def rename_lists(index: faiss.Index, data_path: Path) -> None:
    """Move the file the on-disk lists of ``index`` are mapped from to ``data_path`` (the map stays valid)."""
    lists = _ondisk_lists(index)
    os.replace(lists.filename, data_path)
    lists.filename = str(data_path)


def _list_arrays(lists: faiss.InvertedLists, list_no: int, code_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of one list's ids int64 (m,) and codes uint8 (m, code_size)."""
    size = lists.list_size(list_no)
    if size == 0:
        return np.zeros(0, np.int64), np.zeros((0, code_size), np.uint8)
    ids_ptr, codes_ptr = lists.get_ids(list_no), lists.get_codes(list_no)
    ids = faiss.rev_swig_ptr(ids_ptr, size).copy()
    codes = faiss.rev_swig_ptr(codes_ptr, size * code_size).copy().reshape(size, code_size)
    lists.release_ids(list_no, ids_ptr)
    lists.release_codes(list_no, codes_ptr)
    return ids, codes


@contextlib.contextmanager
def quiet_c_stdout() -> Iterator[None]:
    """Send what C code printf()s to stdout to /dev/null meanwhile (FAISS's on-disk lists talk there).

    Python's own stdout is flushed first; only file descriptor 1 is redirected, and restored after.
    """
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    libc.fflush(None)
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _hang(index: faiss.Index, lists: faiss.OnDiskInvertedLists) -> None:
    """Make ``lists`` the (owned) inverted lists of ``index``, freeing (and unmapping) the old ones."""
    ivf = faiss.extract_index_ivf(index)
    ivf.replace_invlists(lists, True)
    lists.this.disown()  # the index owns it now


def _ivf_or_none(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _ondisk_lists(index: faiss.Index) -> faiss.OnDiskInvertedLists:
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists):
        raise ParameterError(f"the index's inverted lists are {type(lists).__name__}, not on disk")
    return lists


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
