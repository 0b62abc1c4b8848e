"""The configuration of VoidLLM: ``voidllm.yaml`` as immutable attrs values.

Use :func:`load_config` at startup (discovery, ``${VAR}`` interpolation, environment fallbacks, validation)
and :func:`parse_config` in tests. Every problem in a file is reported at once, in a :class:`ConfigError`,
each prefixed with its key path (``models[2].deployments[0].weight: must be >= 0 (got -1)``).

Layout: ``models.py``, ``settings.py`` and ``upstreams.py`` hold the classes; ``units.py`` durations and
sizes; ``checks.py`` single-value rules; ``validate.py`` rules across fields and entries; ``yamlread.py``
YAML with interpolation; ``codec.py`` the cattrs converter; ``loader.py`` discovery and loading; ``tls.py``
the admin port's TLS files, loaded when the gateway starts.
"""

from voidllm.config.errors import ConfigError as ConfigError
from voidllm.config.loader import find_config_path as find_config_path
from voidllm.config.loader import load_config as load_config
from voidllm.config.loader import parse_config as parse_config
from voidllm.config.models import AdminServerConfig as AdminServerConfig
from voidllm.config.models import CacheConfig as CacheConfig
from voidllm.config.models import Config as Config
from voidllm.config.models import CorsConfig as CorsConfig
from voidllm.config.models import DatabaseConfig as DatabaseConfig
from voidllm.config.models import LoggingConfig as LoggingConfig
from voidllm.config.models import ProxyServerConfig as ProxyServerConfig
from voidllm.config.models import RedisConfig as RedisConfig
from voidllm.config.models import ServerConfig as ServerConfig
from voidllm.config.models import TLSConfig as TLSConfig
from voidllm.config.settings import AuditConfig as AuditConfig
from voidllm.config.settings import BootstrapConfig as BootstrapConfig
from voidllm.config.settings import CircuitBreakerConfig as CircuitBreakerConfig
from voidllm.config.settings import CodeModeConfig as CodeModeConfig
from voidllm.config.settings import FunctionalProbeConfig as FunctionalProbeConfig
from voidllm.config.settings import HealthCheckConfig as HealthCheckConfig
from voidllm.config.settings import HealthProbeConfig as HealthProbeConfig
from voidllm.config.settings import MCPConfig as MCPConfig
from voidllm.config.settings import MCPHealthConfig as MCPHealthConfig
from voidllm.config.settings import ModelsProbeConfig as ModelsProbeConfig
from voidllm.config.settings import RetentionConfig as RetentionConfig
from voidllm.config.settings import SettingsConfig as SettingsConfig
from voidllm.config.settings import SSOConfig as SSOConfig
from voidllm.config.settings import UsageConfig as UsageConfig
from voidllm.config.units import parse_duration as parse_duration
from voidllm.config.units import parse_size as parse_size
from voidllm.config.upstreams import DeploymentConfig as DeploymentConfig
from voidllm.config.upstreams import MCPServerConfig as MCPServerConfig
from voidllm.config.upstreams import ModelConfig as ModelConfig
from voidllm.config.upstreams import PricingConfig as PricingConfig

__all__ = [
    "AdminServerConfig",
    "AuditConfig",
    "BootstrapConfig",
    "CacheConfig",
    "CircuitBreakerConfig",
    "CodeModeConfig",
    "Config",
    "ConfigError",
    "CorsConfig",
    "DatabaseConfig",
    "DeploymentConfig",
    "FunctionalProbeConfig",
    "HealthCheckConfig",
    "HealthProbeConfig",
    "LoggingConfig",
    "MCPConfig",
    "MCPHealthConfig",
    "MCPServerConfig",
    "ModelConfig",
    "ModelsProbeConfig",
    "PricingConfig",
    "ProxyServerConfig",
    "RedisConfig",
    "RetentionConfig",
    "SSOConfig",
    "ServerConfig",
    "SettingsConfig",
    "TLSConfig",
    "UsageConfig",
    "find_config_path",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
]
