"""Putting a trained autoencoder to work on a store of any size: encode, reconstruct, denoise,
score anomalies, generate, compress, probe. Each streams in bounded memory and writes its output
under a temporary name, renamed when complete."""
