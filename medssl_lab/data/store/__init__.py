"""Pool stores: your own images (DICOM trees, image folders, MedMNIST, MedNIST) as uint8 shards on disk."""
