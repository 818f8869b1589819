"""The EKS control plane: cluster role, KMS-encrypted secrets, its log group (with retention),
access entries, OIDC for IRSA."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pulumi
import pulumi_aws as aws

from infra.aws.iam import CLUSTER_POLICIES, role, service_trust_policy
from infra.aws.kubeconfig import render_kubeconfig
from infra.aws.versions import status_of
from infra.config.cluster import ClusterConfig

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity] | None) -> str:
    """The cluster's OIDC issuer URL (EKS reports one identity with one OIDC issuer)."""
    issuer = identities[0].oidcs[0].issuer if identities and identities[0].oidcs else None
    assert issuer, f"EKS reported no OIDC issuer ({identities!r})"
    return issuer


@dataclass(frozen=True, kw_only=True)
class EksClusterArgs:
    """What the control plane is built from."""

    cluster: ClusterConfig
    """Name, version and the `eks` section (endpoint access, admins, logs)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets for the control plane's network interfaces."""
    today: date
    """The deploy date: a version past standard support gets the EXTENDED upgrade policy."""
    network_ready: Sequence[pulumi.Resource] = ()
    """Routes the cluster's interfaces need (and that must outlive them on destroy)."""


def support_type(version: str, today: date) -> str:
    """The cluster's upgrade policy: EXTENDED only when the version has left standard support
    (STANDARD would have EKS upgrade it at the end of standard support)."""
    return "EXTENDED" if status_of(version, today) == "extended" else "STANDARD"


def access_config() -> dict:
    """API authentication only, and no implicit admin for the creating identity: every admin is an
    explicit access entry (the implicit one plus an explicit entry for the same principal fails
    with 409 ResourceInUseException, and the deploying CI role is one of the admins)."""
    return {"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False}


def log_group_name(cluster_name: str) -> str:
    """The log group EKS writes control-plane logs to (it creates one without retention otherwise)."""
    return f"/aws/eks/{cluster_name}/cluster"


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster with API authentication, admin access entries and an IRSA OIDC provider."""

    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (a secret) using `aws eks get-token`."""
    ready: list[pulumi.Resource]
    """The cluster and its admins' access entries: Kubernetes API calls wait for these."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llm-stack:aws:EksCluster", name, None, opts)
        eks = args.cluster.eks
        assert eks is not None  # mode 'eks' is checked by the config model
        child = pulumi.ResourceOptions(parent=self)
        version = args.cluster.kubernetes_version or ""
        cluster_role = role(f"{name}-cluster", service_trust_policy("eks.amazonaws.com"), CLUSTER_POLICIES,
                            description=f"EKS control plane of {args.cluster.name}", parent=self)
        key = aws.kms.Key(f"{name}-secrets", description=f"Secrets encryption of {args.cluster.name}",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=child)
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=log_group_name(args.cluster.name),
                                       retention_in_days=eks.log_retention_days, opts=child)
        cluster = aws.eks.Cluster(
            name, name=args.cluster.name, version=version, role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids), endpoint_public_access=eks.endpoint_public_access,
                endpoint_private_access=eks.endpoint_private_access,
                public_access_cidrs=list(eks.public_access_cidrs) or None),
            access_config=aws.eks.ClusterAccessConfigArgs(**access_config()),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]),
            enabled_cluster_log_types=list(eks.enabled_log_types),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=support_type(version, args.today)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*cluster_role.ready, logs,
                                                                 *args.network_ready]))
        self.ready = [cluster, *self._admins(name, cluster, eks.admin_principal_arns)]
        issuer = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer,
                                             client_id_lists=["sts.amazonaws.com"], opts=child)
        self.name, self.endpoint = cluster.name, cluster.endpoint
        self.oidc_provider_arn, self.oidc_issuer = oidc.arn, issuer
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda ca: ca.data),
        ).apply(lambda v: render_kubeconfig(cluster_name=v[0], endpoint=v[1], ca_data=v[2],
                                            region=eks.region)))
        self.register_outputs({"name": self.name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig})

    def _admins(self, name: str, cluster: aws.eks.Cluster,
                principals: Sequence[str]) -> list[pulumi.Resource]:
        """One access entry + cluster-admin association per principal (the only admins: the
        cluster grants its creator nothing implicitly, see `access_config`)."""
        made: list[pulumi.Resource] = []
        for arn in principals:
            short = arn.rsplit("/", 1)[-1]
            entry = aws.eks.AccessEntry(f"{name}-admin-{short}", cluster_name=cluster.name, principal_arn=arn,
                                        type="STANDARD", opts=pulumi.ResourceOptions(parent=self))
            made += [entry, aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{short}", cluster_name=cluster.name, principal_arn=arn,
                policy_arn=ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]))]
        return made
