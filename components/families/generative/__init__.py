"""Generative models: five GAN formulations and a conditional GAN on one DCGAN-style backbone pair, a VAE
and a conditional VAE, scored by FID and Inception Score on the features of the embedded evaluator
(``pipelines.evaluator``)."""

from components.families.generative.task import GenerativeTask, build_task, load_exported, run_params

MODELS = ("dcgan", "wgan", "wgan_gp", "lsgan", "sngan", "cgan", "vae", "cvae")
EXPERIMENT = "generative"
HEADLINE_METRIC = "val/fid_evaluator"

__all__ = ["MODELS", "EXPERIMENT", "HEADLINE_METRIC", "GenerativeTask", "build_task",
           "load_exported", "run_params"]
