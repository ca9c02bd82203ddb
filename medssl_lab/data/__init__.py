"""Data layer: MedMNIST, MedNIST, DICOM, image folders, synthetic phantoms and the pretraining pool."""
