"""Containers: the profile's image built, found and run through a Docker Engine API, and converted for Apptainer.

``engine`` finds the engine (Docker, or Podman's compatible service) through the Docker SDK; ``image`` builds and
checks a profile's image; ``launch`` runs ``bench run`` inside it; ``apptainer`` makes a SIF for clusters. Nothing
here is imported by ``import bench``: the CLI loads it when ``bench image`` or ``bench run --engine`` needs it.
"""
