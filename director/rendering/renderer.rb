# Renders the ERB templates of a whole deployment in one process, with BOSH's
# template semantics (the bosh-template gem's EvaluationContext), for
# director/rendering/erb.py, the only caller.
#
# Input (JSON on stdin):
#   {"limits": {"max_output_bytes": N, "cpu_seconds": N},
#    "dns": {"az_ids": {"z1": "1", ...}},
#    "templates": {"<release>/<version>/<job>": {"monit": "<erb>",
#                                      "files": [{"src": ..., "dest": ..., "erb": ...}]}},
#    "instances": [{"key": "<group>/<id>",
#                   "spec": {...the template spec, without properties and links...},
#                   "jobs": [{"name": ..., "templates": "<release>/<version>/<job>",
#                             "release": {"name": ..., "version": ...},
#                             "properties": "<ref>", "links": "<ref>"}]}],
#    "shared": {"<ref>": <a job's properties or links, sent once for all instances>}}
# Output (JSON on stdout):
#   {"instances": {"<key>": {"jobs": {"<job>": {"monit": "...",
#                                                "files": [{"src", "dest", "content"}]}},
#                            "errors": [{"job", "template", "line", "message"}]}}}
#
# A template is arbitrary Ruby from a release author, so the process writes no
# file (RLIMIT_FSIZE 0), is bounded in CPU time, and stops adding output once
# the total rendered size passes the limit (the caller also caps what it reads
# and kills the process at its deadline).

require 'erb'
require 'json'
require 'ostruct'
require 'shellwords'
require 'yaml'
require 'base64'
require 'digest'
require 'uri'
require 'time'

# BOSH's context loads ActiveSupport's Object#blank?/present? for templates
# written against it; these are the two methods templates use.
class Object
  def blank?
    respond_to?(:empty?) ? !!empty? : !self
  end

  def present?
    !blank?
  end
end

class String
  def blank?
    strip.empty?
  end
end

module OpsconsoleRendering
  # The error BOSH raises for a property that is neither set nor defaulted.
  class UnknownProperty < StandardError
    def initialize(names)
      super("Can't find property '#{names}'")
    end
  end

  class UnknownLink < StandardError
    def initialize(name)
      super("Can't find link '#{name}'")
    end
  end

  class OutputTooLarge < StandardError; end

  # Dotted lookup in a properties hash ("a.b.c"); nil when any part is absent.
  module Lookup
    def lookup_property(collection, name)
      return nil if collection.nil?

      ref = collection
      name.to_s.split('.').each do |key|
        return nil unless ref.is_a?(Hash)

        ref = ref[key]
        return nil if ref.nil?
      end
      ref
    end

    def first_property(collection, args)
      names = Array(args[0])
      names.each do |name|
        value = lookup_property(collection, name)
        return value unless value.nil?
      end
      return args[1] if args.length == 2

      raise UnknownProperty, names
    end

    def properties_if_p(collection, names)
      values = names.map do |name|
        value = lookup_property(collection, name)
        return ActiveElseBlock.new(self) if value.nil?

        value
      end
      yield(*values)
      InactiveElseBlock.new
    end
  end

  # What if_p / if_link return when their block did not run: the next branch runs.
  class ActiveElseBlock
    def initialize(context)
      @context = context
    end

    def else
      yield
    end

    def else_if_p(*names, &block)
      @context.if_p(*names, &block)
    end

    def else_if_link(name, &block)
      @context.if_link(name, &block)
    end
  end

  # What if_p / if_link return when their block ran: every later branch is skipped.
  class InactiveElseBlock
    def else; end

    def else_if_p(*_names)
      InactiveElseBlock.new
    end

    def else_if_link(_name)
      InactiveElseBlock.new
    end
  end

  # spec.* as BOSH offers it: an OpenStruct tree whose methods(false) lists its keys.
  class SpecStruct < OpenStruct
    def methods(regular = true)
      regular ? super(regular) : marshal_dump.keys.map(&:to_sym)
    end

    def inspect
      '#<spec>'
    end
    alias to_s inspect
  end

  def self.openstruct(object, klass = OpenStruct)
    case object
    when Hash
      klass.new(object.each_with_object({}) { |(k, v), h| h[k] = openstruct(v, klass) })
    when Array
      object.map { |item| openstruct(item, klass) }
    else
      object
    end
  end

  # Link data is shared by every template of every consumer in this render
  # (deep-frozen, never copied whole); what a template reads is its own copy.
  module CopyOnRead
    def copy_value(value)
      case value
      when nil, true, false, Integer, Float, Symbol then value
      when String then value.dup
      else Marshal.load(Marshal.dump(value))
      end
    end

    def p(*args)
      copy_value(first_property(@properties, args))
    end

    def if_p(*names, &block)
      properties_if_p(@properties, names) { |*values| block.call(*values.map { |v| copy_value(v) }) }
    end

    def properties
      copy_value(@properties)
    end
  end

  class LinkInstance
    include Lookup
    include CopyOnRead

    def initialize(spec)
      @spec = spec
      @properties = spec['properties']
    end

    %w[name index id az address bootstrap].each do |key|
      define_method(key) { copy_value(@spec[key]) }
    end

    def inspect
      "#<link instance #{@spec['name']}/#{@spec['id']}>"
    end
  end

  class Link
    include Lookup
    include CopyOnRead
    attr_reader :instances

    def initialize(spec, az_ids)
      @spec = spec
      @instances = (spec['instances'] || []).map { |i| LinkInstance.new(i) }
      @properties = spec['properties']
      @az_ids = az_ids
    end

    # A manual link (or one given an address) answers that address; otherwise the
    # BOSH DNS query for the link's group: q-<a<az id>...s<status>>.<group>.<network>.<deployment>.<domain>.
    def address(criteria = {})
      return copy_value(@spec['address']) if @spec.key?('address')

      criteria = criteria.transform_keys(&:to_sym)
      slug = []
      Array(criteria[:azs]).each do |az|
        id = @az_ids[az.to_s]
        raise "Unknown AZ: '#{az}'" if id.nil?

        slug << "a#{id}"
      end
      status = { 'healthy' => 3, 'unhealthy' => 1, 'all' => 4, 'default' => 0 }
      slug << "s#{status.fetch(criteria[:status].to_s, 0)}"
      [
        "q-#{slug.sort.join}",
        canonical(@spec['instance_group']),
        canonical(@spec['default_network']),
        canonical(@spec['deployment_name']),
        @spec['domain'] || 'bosh'
      ].join('.')
    end

    def inspect
      '#<link>'
    end

    private

    # BOSH's Canonicalizer: lower case, [a-z0-9-] only, no leading/trailing dash.
    def canonical(name)
      name.to_s.downcase.gsub(/_/, '-').gsub(/[^a-z0-9-]/, '').sub(/\A-+/, '').sub(/-+\z/, '')
    end
  end

  # The object a template is evaluated against (BOSH's EvaluationContext).
  class Context
    include Lookup
    attr_reader :name, :index, :properties, :raw_properties, :spec

    def initialize(spec, properties, links, az_ids)
      @name = spec['name']
      @index = spec['index']
      @spec = OpsconsoleRendering.openstruct(spec.merge('properties' => properties), SpecStruct)
      @raw_properties = properties || {}
      @properties = OpsconsoleRendering.openstruct(@raw_properties)
      @links = links || {}
      @az_ids = az_ids
    end

    def get_binding
      binding
    end

    def p(*args)
      first_property(@raw_properties, args)
    end

    def if_p(*names, &block)
      properties_if_p(@raw_properties, names, &block)
    end

    def link(name)
      link_spec = @links[name]
      raise UnknownLink, name unless link_spec.is_a?(Hash) && link_spec.key?('instances')

      Link.new(link_spec, @az_ids)
    end

    def if_link(name)
      link_spec = @links[name]
      return ActiveElseBlock.new(self) unless link_spec.is_a?(Hash) && link_spec.key?('instances')

      yield Link.new(link_spec, @az_ids)
      InactiveElseBlock.new
    end

    # Keeps property values out of NameError messages.
    def inspect
      '#<template context>'
    end
    alias to_s inspect
  end

  # The Ruby error's message as the task log shows it. A NameError's default
  # message embeds the receiver's inspect (which may be a property value, a
  # secret): name the method and the receiver's class only.
  def self.message_for(error, filename)
    if error.is_a?(SyntaxError)
      # "<job>/<src>:12: syntax error, ..." followed by the compiled source: keep the sentence.
      error.message.to_s.lines.first.to_s.sub(/\A#{Regexp.escape(filename.to_s)}:\d+:\s*/, '').strip
    elsif error.is_a?(NoMethodError)
      "undefined method '#{error.name}' for #{receiver_label(error)}"
    elsif error.is_a?(NameError) && error.message.start_with?('undefined local variable or method')
      "undefined local variable or method '#{error.name}'"
    else
      error.message.to_s.strip
    end
  end

  def self.receiver_label(error)
    receiver = error.receiver
    receiver.nil? ? 'nil' : "an instance of #{receiver.class}"
  rescue ArgumentError
    'an object'
  end

  class Renderer
    def initialize(input)
      @templates = input['templates'] || {}
      @shared = deep_freeze(input['shared'] || {})
      @instances = input['instances'] || []
      @az_ids = (input['dns'] || {})['az_ids'] || {}
      @max_output = (input['limits'] || {})['max_output_bytes'] || (64 * 1024 * 1024)
      @output_bytes = 0
      @compiled = {}
    end

    def run
      out = {}
      @instances.each do |instance|
        out[instance['key']] = render_instance(instance)
      end
      { 'instances' => out }
    end

    private

    def render_instance(instance)
      jobs = {}
      errors = []
      (instance['jobs'] || []).each do |job|
        rendered, job_errors = render_job(instance['spec'] || {}, job)
        jobs[job['name']] = rendered
        errors.concat(job_errors)
      end
      { 'jobs' => jobs, 'errors' => errors }
    end

    def render_job(spec, job)
      source = @templates.fetch(job['templates'])
      job_spec = spec.merge('release' => job['release'])
      errors = []
      monit = evaluate(job, 'monit', source['monit'] || '', job_spec, errors)
      files = (source['files'] || []).map do |file|
        content = evaluate(job, file['src'], file['erb'], job_spec, errors)
        { 'src' => file['src'], 'dest' => file['dest'], 'content' => content }
      end
      [{ 'monit' => monit, 'files' => files }, errors]
    end

    def compiled(job, src, text)
      key = [job['templates'], src]
      @compiled[key] ||= begin
        erb = ERB.new(text, trim_mode: '-')
        erb.filename = "#{job['name']}/#{src}"
        erb
      end
    end

    # One template against a fresh context (a template that mutates spec or
    # properties must not change what the next one sees).
    def evaluate(job, src, text, spec, errors)
      erb = compiled(job, src, text)
      context = Context.new(deep_copy(spec), deep_copy(@shared[job['properties']]),
                            @shared[job['links']], @az_ids)
      result = erb.result(context.get_binding).dup.force_encoding(Encoding::UTF_8)
      unless result.valid_encoding?
        raise EncodingError, 'the rendered file is not valid UTF-8'
      end

      @output_bytes += result.bytesize
      if @output_bytes > @max_output
        raise OutputTooLarge,
              "the rendered templates exceed #{@max_output} bytes (at template '#{src}' of job '#{job['name']}')"
      end

      result
    rescue OutputTooLarge
      raise
    rescue ScriptError, StandardError, SystemStackError, NoMemoryError => e
      errors << { 'job' => job['name'], 'template' => src,
                  'line' => line_of(e, erb && erb.filename),
                  'message' => OpsconsoleRendering.message_for(e, erb && erb.filename) }
      nil
    end

    # The line in the template where the error was raised: the first backtrace
    # entry in the template's file (a syntax error names it in its message).
    def line_of(error, filename)
      return nil if filename.nil?

      candidates = (error.backtrace || []).dup
      candidates.unshift(error.message.to_s) if error.is_a?(SyntaxError)
      candidates.each do |entry|
        next unless entry.start_with?("#{filename}:")

        line = entry[(filename.length + 1)..].to_i
        return line if line.positive?
      end
      nil
    end

    def deep_freeze(object)
      case object
      when Hash then object.each_value { |v| deep_freeze(v) }
      when Array then object.each { |v| deep_freeze(v) }
      end
      object.freeze
    end

    def deep_copy(object)
      Marshal.load(Marshal.dump(object))
    end
  end
end

if $PROGRAM_NAME == __FILE__
  input = JSON.parse($stdin.read)
  limits = input['limits'] || {}
  # A template that writes a file gets Errno::EFBIG (its own error), not a killed renderer.
  Signal.trap('XFSZ', 'IGNORE')
  Process.setrlimit(:FSIZE, 0)
  cpu = limits['cpu_seconds']
  Process.setrlimit(:CPU, cpu.to_i, cpu.to_i + 1) if cpu
  begin
    output = OpsconsoleRendering::Renderer.new(input).run
  rescue OpsconsoleRendering::OutputTooLarge => e
    output = { 'fatal' => e.message }
  end
  $stdout.write(JSON.generate(output))
end
