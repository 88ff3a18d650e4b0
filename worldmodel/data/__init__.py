"""Data: video files, simulator clips and trajectories, with exactly resumable sampling."""
