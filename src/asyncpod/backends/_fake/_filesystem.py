"""The fake's files: a container's root, the volumes and host paths it mounts."""

from __future__ import annotations

import io
import itertools
import tarfile

from .._base import VolumeSpec


class _Files(dict[str, bytes]):
    """A volume's files, and the modes of those it was created with (``VolumeSpec.files``);
    any other file's is 0644."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: dict[str, int] = {}


class _Volume:
    def __init__(self, vid: str, spec: VolumeSpec) -> None:
        self.id = vid
        self.spec = spec
        files = _Files()
        self.files: dict[str, bytes] = files
        self.modes = files.modes
        self.dirs: set[str] = {""}
        self.mounted_by: set[str] = set()


#: a mount in a fake container: (mount point, files, dirs, read_only, sub_path prefix)
_MountEntry = tuple[str, dict[str, bytes], set[str], bool, str]


class _FileSystem:
    """A container's files: its own root plus mounted volumes and host paths."""

    def __init__(
        self, root: dict[str, bytes], mounts: list[_MountEntry], *, read_only_root: bool = False
    ) -> None:
        self.root: dict[str, bytes] = dict(root)
        #: the root file system is read-only (``readOnlyRootFilesystem``); mounts are not
        self.read_only_root = read_only_root
        self.root_dirs: set[str] = set()
        self.mounts = mounts
        for path in self.root:
            self._add_parents(self.root_dirs, path)

    @staticmethod
    def _add_parents(dirs: set[str], path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(len(parts) + 1):
            dirs.add("/".join(parts[:i]))

    def _resolve(self, path: str) -> tuple[dict[str, bytes], set[str], str, bool]:
        norm = "/" + "/".join(p for p in path.split("/") if p and p != ".")
        best: tuple[str, dict[str, bytes], set[str], bool, str] | None = None
        for mount in self.mounts:
            point = mount[0].rstrip("/")
            if (norm == point or norm.startswith(point + "/")) and (
                best is None or len(point) > len(best[0].rstrip("/"))
            ):
                best = mount
        if best is None:
            return self.root, self.root_dirs, norm.strip("/"), self.read_only_root
        point, files, dirs, read_only, prefix = best
        rel = norm[len(point.rstrip("/")) :].strip("/")
        rel = "/".join(p for p in (prefix, rel) if p)
        return files, dirs, rel, read_only

    def read(self, path: str) -> bytes:
        files, dirs, rel, _ = self._resolve(path)
        if rel in files:
            return files[rel]
        if rel in dirs:
            raise IsADirectoryError(21, "Is a directory", path)
        raise FileNotFoundError(2, "No such file or directory", path)

    def write(self, path: str, data: bytes) -> None:
        files, dirs, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        if rel in dirs:
            raise IsADirectoryError(21, "Is a directory", path)
        files[rel] = data
        self._add_parents(dirs, rel)

    def remove(self, path: str) -> None:
        files, _, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        if rel not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        del files[rel]

    def mkdir(self, path: str) -> None:
        _, dirs, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        self._add_parents(dirs, rel + "/x")

    def mode(self, path: str) -> int:
        """The permission bits of *path*: a directory's are 0755, a file's 0644 unless its
        volume was created with another."""
        files, dirs, rel, _ = self._resolve(path)
        if rel in files:
            modes = files.modes if isinstance(files, _Files) else {}
            return modes.get(rel, 0o644)
        if rel in dirs:
            return 0o755
        raise FileNotFoundError(2, "No such file or directory", path)

    def exists(self, path: str) -> bool:
        files, dirs, rel, _ = self._resolve(path)
        return rel in files or rel in dirs

    def is_dir(self, path: str) -> bool:
        _, dirs, rel, _ = self._resolve(path)
        return rel in dirs

    def listdir(self, path: str) -> list[str]:
        files, dirs, rel, _ = self._resolve(path)
        if rel not in dirs:
            raise FileNotFoundError(2, "No such file or directory", path)
        prefix = rel + "/" if rel else ""
        names = {
            p[len(prefix) :].split("/")[0]
            for p in itertools.chain(files, dirs)
            if p.startswith(prefix) and p != rel
        }
        return sorted(names)


def files_of_tarball(tarball: bytes) -> dict[str, bytes]:
    """The regular files of an uncompressed tar archive, by path (raises TarError)."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return files
