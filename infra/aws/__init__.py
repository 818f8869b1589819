"""AWS: the VPC, the EKS cluster, GPU node pools, IAM and add-ons, ending in a Kubernetes provider.

One concept per module; `eks_stack.build_eks` composes them for the program.
"""
