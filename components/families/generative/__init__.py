"""Generative models: five GAN formulations and a conditional GAN on one DCGAN-style backbone pair, a VAE
and a conditional VAE, scored by FID and Inception Score on the features of the embedded evaluator
(``pipelines.evaluator``)."""
