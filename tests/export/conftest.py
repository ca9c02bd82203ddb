import pytest

from medssl_lab.export import export_encoder
from medssl_lab.pretrain import shipped_encoder


@pytest.fixture(scope="package")
def exported(tmp_path_factory):
    """The shipped encoder exported once in every format (about 10 s), shared by the export tests."""
    out = tmp_path_factory.mktemp("export") / "encoder_cpu"
    return export_encoder(shipped_encoder("cpu"), out)
