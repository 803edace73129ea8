"""Reinforcement learning: gymnasium envs registered for RLlib, tabular methods on the grid world,
RLlib's DQN and our REINFORCE on RLlib's new API stack, and the loop that trains and tracks them."""
